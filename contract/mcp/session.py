"""The MCP door as an agent sees it, through the official Python SDK (the `mcp` package).

    python contract/mcp/session.py http://127.0.0.1:8000

Registers a user over REST, makes API tokens, connects the SDK's streamable HTTP client to
`/mcp` with one, and checks: the tools listed; each tool with good input (its result compared with
what REST answers) and with bad input (a tool error naming the field, nothing applied); that a
read-only token sees only read tools and cannot call a write tool; and a conversation-like
sequence (find overdue tasks, complete two, reschedule one) that the change feed then shows.
All of it runs twice: as the SDK connects by default (it probes `server/discover` and speaks the
2026-07-28 revision), and with `mode="legacy"` (the `initialize` handshake, 2025-11-25).
Each check prints one `session: ` line; the first failure raises and exits non-zero.
"""

import asyncio
import contextlib
import json
import sys
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

BASE = sys.argv[1].rstrip("/")
READ_TOOLS = {"find_tasks", "get_task", "agenda", "reminder_history"}
ALL_TOOLS = READ_TOOLS | {
    "add_tasks", "update_tasks", "complete_tasks", "reopen_tasks", "move_tasks", "delete_tasks",
    "list_projects", "add_project",
}


def check(condition, what):
    if not condition:
        raise AssertionError(what)
    print(f"session: [{MODE}] {what}", flush=True)


def rest(method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def at(hours):
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).isoformat()


MODE = "auto"


@contextlib.asynccontextmanager
async def connect(token):
    # The transport takes any httpx2 client (the SDK's own HTTP library, a public dependency) and
    # leaves closing a client it was given to its owner.
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=MODE) as client,
    ):
        yield client


async def good(client, tool, arguments):
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise AssertionError(f"{tool} failed: {result.content[0].text}")
    return result.structured_content


async def bad(client, tool, arguments, *needles):
    result = await client.call_tool(tool, arguments)
    text = result.content[0].text if result.content else ""
    check(result.is_error and all(n in text for n in needles),
          f"{tool} with bad input is a tool error naming {', '.join(needles)}")
    return text


async def main():
    status, account = rest("POST", "/api/v1/auth/register",
                           body={"email": f"agent-{uuid.uuid4().hex[:8]}@example.com", "password": "correct horse battery"})
    assert status == 201, account
    login = account["access_token"]

    def token(scopes):
        status, created = rest("POST", "/api/v1/tokens", login, {"name": " ".join(scopes), "scopes": scopes})
        assert status == 201, created
        return created["token"]

    full = token(["tasks:read", "tasks:write", "projects:read", "projects:write"])
    read_only = token(["tasks:read"])

    def task(id):
        return rest("GET", f"/api/v1/tasks/{id}", login)

    def total():
        return rest("GET", "/api/v1/tasks?limit=1", login)[1]["total"]

    async with connect(full) as client:
        expected = LATEST_MODERN_VERSION if MODE == "auto" else LATEST_HANDSHAKE_VERSION
        check(client.protocol_version == expected, f"connected with a token; negotiated {client.protocol_version}")
        tools = (await client.list_tools()).tools
        check({t.name for t in tools} == ALL_TOOLS, f"{len(tools)} tools listed")
        check(all(t.output_schema and t.description for t in tools), "every tool has an output schema and a description")

        # Projects.
        home = await good(client, "add_project", {"name": "Home"})
        check(rest("GET", f"/api/v1/projects/{home['id']}", login)[1] == home, "add_project: the project REST shows")
        await bad(client, "add_project", {"name": ""}, "name")
        listed = await good(client, "list_projects", {})
        check(listed["items"] == rest("GET", "/api/v1/projects", login)[1]["items"], "list_projects: as REST lists them")
        await bad(client, "list_projects", {"archived": "yes"}, "archived")

        # Tasks: three overdue, one due next week in Home, one with a reminder.
        added = await good(client, "add_tasks", {"tasks": [
            {"title": "Pay the electricity bill", "due_at": at(-50), "priority": "high"},
            {"title": "Call the dentist", "due_at": at(-26)},
            {"title": "Return the library books", "due_at": at(-3)},
            {"title": "Plan the garden", "due_at": at(24 * 4), "project_id": home["id"]},
            {"title": "Renew passport", "due_at": at(24 * 20), "reminder_at": at(24 * 19)},
        ]})
        ids = [r["task"]["id"] for r in added["results"]]
        check(all(task(r["task"]["id"])[1] == r["task"] for r in added["results"]), "add_tasks: each task as REST shows it")
        before = total()
        await bad(client, "add_tasks", {"tasks": [{"title": "fine"}, {"title": ""}]}, "tasks[1].title")
        check(total() == before, "add_tasks: a bad item applies nothing")

        found = await good(client, "find_tasks", {"overdue": True, "sort": "due_at"})
        rest_found = rest("GET", "/api/v1/tasks?overdue=true&sort=due_at", login)[1]
        check([t["id"] for t in found["items"]] == [t["id"] for t in rest_found["items"]] and found["total"] == 3,
              "find_tasks: the overdue tasks REST finds")
        await bad(client, "find_tasks", {"limit": 0}, "limit")

        got = await good(client, "get_task", {"id": ids[0]})
        status, rest_task = task(ids[0])
        check(got["task"] == rest_task, "get_task: the task REST shows")
        await bad(client, "get_task", {"id": str(uuid.uuid4())}, "not_found")

        await good(client, "update_tasks", {"tasks": [{"id": ids[3], "changes": {"title": "Plan the vegetable garden"}}]})
        check(task(ids[3])[1]["title"] == "Plan the vegetable garden", "update_tasks: REST shows the change")
        await bad(client, "update_tasks", {"tasks": [{"id": ids[3], "changes": {"priority": "urgent"}}]}, "tasks[0].changes.priority")

        await good(client, "complete_tasks", {"tasks": [{"id": ids[3]}]})
        check(task(ids[3])[1]["completed"] is True, "complete_tasks: REST shows it done")
        await bad(client, "complete_tasks", {"tasks": [{"id": str(uuid.uuid4())}]}, "not_found", "tasks[0]")
        await good(client, "reopen_tasks", {"tasks": [{"id": ids[3]}]})
        check(task(ids[3])[1]["completed"] is False, "reopen_tasks: REST shows it open")
        await bad(client, "reopen_tasks", {"tasks": [{"id": "nope"}]}, "tasks[0].id")

        await good(client, "move_tasks", {"tasks": [{"id": ids[3], "project_id": None}]})
        check(task(ids[3])[1]["project_id"] is None, "move_tasks: REST shows it in the inbox")
        await bad(client, "move_tasks", {"tasks": [{"id": ids[3]}]}, "tasks[0].project_id")

        spare = (await good(client, "add_tasks", {"tasks": [{"title": "Spare"}]}))["results"][0]
        await good(client, "update_tasks", {"tasks": [{"id": spare["task"]["id"], "changes": {"title": "Spare 2"}}]})
        await bad(client, "delete_tasks", {"tasks": [{"id": spare["task"]["id"], "etag": spare["etag"]}]}, "precondition_failed")
        await good(client, "delete_tasks", {"tasks": [{"id": spare["task"]["id"]}]})
        check(task(spare["task"]["id"])[0] == 404, "delete_tasks: REST answers 404, the task is in the trash")

        agenda = await good(client, "agenda", {})
        check(agenda["overdue"]["total"] == 3 and [t["id"] for t in agenda["next_7_days"]["items"]] == [ids[3]],
              "agenda: three overdue, one in the next 7 days")
        await bad(client, "agenda", {"day": "monday"}, "day")

        history = await good(client, "reminder_history", {"task_id": ids[4]})
        rest_history = rest("GET", f"/api/v1/tasks/{ids[4]}/reminders", login)[1]
        check(history["items"] == rest_history["items"], "reminder_history: as REST shows it")
        await bad(client, "reminder_history", {"task_id": str(uuid.uuid4())}, "not_found")

        # A conversation: "what is overdue? I paid the bill and called the dentist; move the books to tomorrow."
        since = rest("GET", "/api/v1/changes?since=0", login)[1]["next_since"]
        overdue = (await good(client, "find_tasks", {"overdue": True, "sort": "due_at"}))["items"]
        bill, dentist, books = overdue
        etags = {t["id"]: (await good(client, "get_task", {"id": t["id"]}))["etag"] for t in overdue}
        done = await good(client, "complete_tasks", {"tasks": [
            {"id": bill["id"], "etag": etags[bill["id"]]}, {"id": dentist["id"], "etag": etags[dentist["id"]]}]})
        check([r["task"]["completed"] for r in done["results"]] == [True, True], "conversation: two overdue tasks completed")
        tomorrow = at(24)
        moved = await good(client, "update_tasks", {"tasks": [
            {"id": books["id"], "etag": etags[books["id"]], "changes": {"due_at": tomorrow}}]})
        check(moved["results"][0]["task"]["due_at"] != books["due_at"], "conversation: one rescheduled")
        feed = rest("GET", f"/api/v1/changes?since={since}", login)[1]
        changed = {c["id"]: c["task"] for c in feed["changes"]}
        check(changed.keys() == {bill["id"], dentist["id"], books["id"]}
              and changed[bill["id"]]["completed"] and changed[dentist["id"]]["completed"]
              and changed[books["id"]]["due_at"] == moved["results"][0]["task"]["due_at"],
              "conversation: the change feed shows exactly those three changes")
        still = await good(client, "find_tasks", {"overdue": True})
        check(still["total"] == 0, "conversation: nothing is overdue any more")

    before = total()
    async with connect(read_only) as client:
        tools = (await client.list_tools()).tools
        check({t.name for t in tools} == READ_TOOLS, "a read-only token sees only the read tools")
        await bad(client, "add_tasks", {"tasks": [{"title": "sneaky"}]}, "tasks:write")
        check(total() == before, "a read-only token cannot write")
        await good(client, "find_tasks", {})


# The SDK's default probes `server/discover` and speaks the 2026-07-28 revision; `legacy` forces
# the `initialize` handshake the older revisions (and the TypeScript SDK 1.x) use.
for MODE in ("auto", "legacy"):
    asyncio.run(main())
