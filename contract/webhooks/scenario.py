"""A new user's webhook, end to end, verified by the Standard Webhooks reference library.

    scenario.py BASE_URL

Starts a receiver on a free port that verifies every request with
`standardwebhooks.Webhook(secret).verify(body, headers)`, registers a user, makes an API token
with the scopes `tasks:write` and `webhooks` (with the login token, as only a login may), and with
that token registers a webhook to the receiver and completes a task. The receiver answers the
first delivery 500, so the check sees the worker's retry: the same `webhook-id`, verified again.
It checks that the verified `task.completed` arrived and that the delivery log shows both
attempts. Exits non-zero on any failure.
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

BASE = sys.argv[1].rstrip("/")
secret = {}
verified = []
refused = []
raw = []
# Answered to the first verified delivery, so that the retry is seen.
failures = [500]


def step(text):
    print(f"scenario: {text}", flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        raw.append((body, headers))
        try:
            payload = Webhook(secret["value"]).verify(body, headers)
        except Exception as error:  # noqa: BLE001 - any failure is a refusal
            refused.append(repr(error))
            self.send_response(400)
            self.end_headers()
            return
        if failures:
            self.send_response(failures.pop())
            self.end_headers()
            verified.append((headers["webhook-id"], None))
            return
        verified.append((headers["webhook-id"], payload))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def expect(status, got, what):
    if got[0] != status:
        raise SystemExit(f"scenario: {what}: expected {status}, got {got[0]}: {got[1]}")
    return got[1]


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    step(f"receiver listening at {url}")

    email = f"webhooks-{time.time_ns()}@example.com"
    account = expect(201, call("POST", "/api/v1/auth/register", {"email": email, "password": "correct horse battery"}), "register")
    login = account["access_token"]
    scopes = ["tasks:write", "webhooks"]
    made = expect(201, call("POST", "/api/v1/tokens", {"name": "webhook scenario", "scopes": scopes}, login), "create API token")
    token = made["token"]
    if not token.startswith("todo_pat_") or made["scopes"] != scopes:
        raise SystemExit(f"scenario: unexpected token {made['hint']} with scopes {made['scopes']}")
    step(f"API token {made['hint']} made with {', '.join(scopes)}; the rest uses it")
    hook = expect(201, call("POST", "/api/v1/webhooks", {"url": url, "events": ["task.completed"]}, token), "create webhook")
    secret["value"] = hook["secret"]
    step(f"webhook {hook['id']} registered; secret shown once ({hook['secret'][:6]}…)")

    task = expect(201, call("POST", "/api/v1/tasks", {"title": "Try webhooks"}, token), "create task")
    done = expect(200, call("PATCH", f"/api/v1/tasks/{task['id']}/complete", {"completed": True}, token), "complete task")
    step(f"task {task['id']} completed")

    # The first retry comes about 5 s after the failed first attempt.
    deadline = time.time() + 30
    while len(verified) < 2 and not refused and time.time() < deadline:
        time.sleep(0.1)
    if refused:
        raise SystemExit(f"scenario: a delivery failed verification: {refused}")
    if len(verified) < 2:
        raise SystemExit(f"scenario: no retry within 30 s ({len(verified)} deliveries)")
    (first_id, _), (webhook_id, payload) = verified[0], verified[1]
    if first_id != webhook_id:
        raise SystemExit(f"scenario: the retry changed its webhook-id: {first_id} then {webhook_id}")
    step(f"the first delivery was answered 500; the retry came with the same webhook-id {webhook_id}")
    if payload["type"] != "task.completed" or payload["data"]["id"] != task["id"]:
        raise SystemExit(f"scenario: unexpected payload {payload}")
    data = dict(payload["data"])
    change_seq = data.pop("change_seq")
    if data != done or not isinstance(change_seq, int):
        raise SystemExit(f"scenario: data is not the task as the API answered it: {payload['data']} vs {done}")
    step(f"verified {payload['type']} {webhook_id} (change {change_seq}) with standardwebhooks")

    body, headers = raw[1]
    try:
        Webhook(secret["value"]).verify(body + b" ", headers)
        raise SystemExit("scenario: a changed body verified")
    except WebhookVerificationError:
        step("a changed body is refused by the same library")

    # The worker records the outcome after it has read the receiver's answer, so the log may
    # still say pending for a moment after the delivery arrived.
    deadline = time.time() + 30
    while True:
        log = expect(200, call("GET", f"/api/v1/webhooks/{hook['id']}/deliveries", token=token), "delivery log")
        entry = log["items"][0]
        if entry["status"] != "pending" or time.time() > deadline:
            break
        time.sleep(0.2)
    if (entry["webhook_id"], entry["status"], entry["status_code"], entry["attempts"]) != (webhook_id, "succeeded", 204, 2):
        raise SystemExit(f"scenario: the delivery log says {entry}")
    step(f"delivery log: {entry['event_type']} {entry['status']} {entry['status_code']} after {entry['attempts']} attempts, the last in {entry['duration_ms']} ms")
    server.shutdown()


if __name__ == "__main__":
    main()
