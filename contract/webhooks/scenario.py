"""A new user's webhook, end to end, verified by the Standard Webhooks reference library.

    scenario.py BASE_URL

Starts a receiver on a free port that verifies every request with
`standardwebhooks.Webhook(secret).verify(body, headers)`, registers a user and a webhook to it,
completes a task, and checks that a verified `task.completed` arrived and that the delivery log
shows it. Exits non-zero on any failure.
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
    token = account["access_token"]
    hook = expect(201, call("POST", "/api/v1/webhooks", {"url": url, "events": ["task.completed"]}, token), "create webhook")
    secret["value"] = hook["secret"]
    step(f"webhook {hook['id']} registered; secret shown once ({hook['secret'][:6]}…)")

    task = expect(201, call("POST", "/api/v1/tasks", {"title": "Try webhooks"}, token), "create task")
    done = expect(200, call("PATCH", f"/api/v1/tasks/{task['id']}/complete", {"completed": True}, token), "complete task")
    step(f"task {task['id']} completed")

    deadline = time.time() + 30
    while not verified and not refused and time.time() < deadline:
        time.sleep(0.1)
    if refused:
        raise SystemExit(f"scenario: a delivery failed verification: {refused}")
    if not verified:
        raise SystemExit("scenario: no delivery within 30 s")
    webhook_id, payload = verified[0]
    if payload["type"] != "task.completed" or payload["data"]["id"] != task["id"]:
        raise SystemExit(f"scenario: unexpected payload {payload}")
    data = dict(payload["data"])
    change_seq = data.pop("change_seq")
    if data != done or not isinstance(change_seq, int):
        raise SystemExit(f"scenario: data is not the task as the API answered it: {payload['data']} vs {done}")
    step(f"verified {payload['type']} {webhook_id} (change {change_seq}) with standardwebhooks")

    body, headers = raw[0]
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
    if (entry["webhook_id"], entry["status"], entry["status_code"]) != (webhook_id, "succeeded", 204):
        raise SystemExit(f"scenario: the delivery log says {entry}")
    step(f"delivery log: {entry['event_type']} {entry['status']} {entry['status_code']} in {entry['duration_ms']} ms")
    server.shutdown()


if __name__ == "__main__":
    main()
