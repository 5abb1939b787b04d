"""Using a Python client generated from the Todo API's OpenAPI document.

scripts/contract generates the package `todo_client` with openapi-python-client (its settings are
in client.yaml beside this file) and runs this scenario against a fresh server:

    PYTHONPATH=target/contract/python-client target/contract-venv/bin/python \\
        contract/python/scenario.py http://127.0.0.1:8080

Every request goes through the generated package, which has
- one module per operation, named after its operationId and grouped by tag
  (`todo_client.api.tasks.create_task` is createTask), each with `sync` (the parsed body) and
  `sync_detailed` (status, headers and the parsed body), plus `asyncio` twins;
- one attrs class per schema in `todo_client.models` (Task, TaskInput, TaskPatch, ...), an enum
  per enum of the document (Priority, TaskSort, BulkOpName, ProblemCode, ...), and UNSET for a
  field that is left out, which is not the same as None (JSON null: "clear this field").

The scenario asserts what a client sees and stops at the first surprise.
"""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

from todo_client import AuthenticatedClient, Client
from todo_client.api.auth import register_user
from todo_client.api.sync import list_changes
from todo_client.api.tasks import bulk_write_tasks, create_task, get_task, list_tasks, update_task
from todo_client.models import (
    BulkOperation,
    BulkOpName,
    BulkRequest,
    BulkResponse,
    ChangeEntry,
    ChangesPage,
    ChangeType,
    Priority,
    Problem,
    ProblemCode,
    RegisterRequest,
    SortOrder,
    Task,
    TaskInput,
    TaskPage,
    TaskPatch,
    TaskSort,
    TokenResponse,
)
from todo_client.types import UNSET, Response, Unset

Parsed = TypeVar("Parsed")


def expect(response: Response[Any], status: HTTPStatus, model: type[Parsed]) -> Parsed:
    """The parsed body of a response that must have this status and be this model."""
    if response.status_code != status:
        problem = response.parsed if isinstance(response.parsed, Problem) else response.content[:300]
        raise AssertionError(f"expected {status.value}, got {response.status_code.value}: {problem}")
    assert isinstance(response.parsed, model), f"a {type(response.parsed).__name__}, not a {model.__name__}"
    return response.parsed


def step(text: str) -> None:
    print(f"scenario: {text}", flush=True)


def register(base_url: str) -> AuthenticatedClient:
    """A new account, and a client that sends its bearer token."""
    email = f"contract-{uuid.uuid4().hex[:12]}@example.com"
    # registerUser needs no token, so a plain Client makes the call.
    with Client(base_url=base_url, raise_on_unexpected_status=True) as anonymous:
        response = register_user.sync_detailed(
            client=anonymous,
            body=RegisterRequest(email=email, password="correct horse battery", name="Contract"),
        )
    session = expect(response, HTTPStatus.CREATED, TokenResponse)
    assert session.token_type == "bearer" and session.expires_in > 0
    assert session.user.email == email
    step(f"registered {email}, a token for {session.expires_in} s")
    # raise_on_unexpected_status: an answer whose status the document does not list for that
    # operation raises errors.UnexpectedStatus, so the scenario also checks the documented statuses.
    return AuthenticatedClient(base_url=base_url, token=session.access_token, raise_on_unexpected_status=True)


def create_tasks(client: AuthenticatedClient) -> list[Task]:
    """Tasks with priorities, tags and due dates, created one by one."""
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    drafts = [
        TaskInput(title="Buy milk", priority=Priority.LOW, tags=["Errands", "home"], due_at=due),
        TaskInput(
            title="File the tax return",
            description="Receipts are in the blue folder.",
            priority=Priority.HIGH,
            tags=["admin"],
            due_at=due + timedelta(days=1),
        ),
        TaskInput(title="Call the plumber", priority=Priority.MEDIUM, tags=["Home", " home "]),
        TaskInput(
            title="Book flights", priority=Priority.HIGH, tags=["travel"], due_at=due + timedelta(hours=5)
        ),
        TaskInput(title="Water the plants", tags=["home"]),  # no priority: the server's default
    ]
    created = []
    for draft in drafts:
        response = create_task.sync_detailed(client=client, body=draft)
        task = expect(response, HTTPStatus.CREATED, Task)
        assert response.headers["Location"] == f"/api/v1/tasks/{task.id}"
        assert response.headers["ETag"], "a created task comes with its ETag"
        assert task.title == draft.title and task.version >= 1 and not task.completed
        # Left out, the priority is `medium`; tags come back trimmed, lower-cased, de-duplicated.
        assert task.priority == (Priority.MEDIUM if isinstance(draft.priority, Unset) else draft.priority)
        folded = [tag.strip().lower() for tag in draft.tags or []]
        assert task.tags == list(dict.fromkeys(folded)), task.tags
        # Due dates are timezone-aware datetimes on both sides.
        assert task.due_at == (None if isinstance(draft.due_at, Unset) else draft.due_at), task.due_at
        created.append(task)
    step(f"created {len(created)} tasks: " + ", ".join(f"{t.title!r} ({t.priority})" for t in created))
    return created


def list_all(client: AuthenticatedClient, page_size: int) -> tuple[list[Task], int]:
    """Every live task, a page at a time, following `next_cursor` until it is null."""
    tasks: list[Task] = []
    pages = 0
    cursor: str | Unset = UNSET  # UNSET: the first call sends no `cursor` at all
    while True:
        response = list_tasks.sync_detailed(client=client, limit=page_size, cursor=cursor)
        page = expect(response, HTTPStatus.OK, TaskPage)
        pages += 1
        assert len(page.items) <= page_size and page.limit == page_size
        tasks.extend(page.items)
        if not isinstance(page.next_cursor, str):  # null (or left out) on the last page
            assert len(tasks) == page.total, (len(tasks), page.total)
            return tasks, pages
        cursor = page.next_cursor


def page_through(client: AuthenticatedClient, created: list[Task]) -> list[Task]:
    """A small `limit`, and each page's cursor for the next one: every task once, newest first."""
    listed, pages = list_all(client, page_size=2)
    ids = [task.id for task in listed]
    assert len(ids) == len(set(ids)), "no task appears on two pages"
    assert ids == [task.id for task in reversed(created)], "the default order is newest first"
    assert pages == 3
    step(f"listed {len(listed)} tasks in {pages} pages of at most 2, newest first")
    return listed


def filter_and_sort(client: AuthenticatedClient) -> None:
    """Query parameters are typed too: a list of Priority values, a TaskSort and a SortOrder."""
    response = list_tasks.sync_detailed(
        client=client, priority=[Priority.HIGH], sort=TaskSort.DUE_AT, order=SortOrder.ASC
    )
    page = expect(response, HTTPStatus.OK, TaskPage)
    assert [t.title for t in page.items] == ["Book flights", "File the tax return"], page.items
    assert all(t.priority is Priority.HIGH for t in page.items)
    step("listed the high-priority tasks by due date: " + ", ".join(repr(t.title) for t in page.items))


def read_with_etag(client: AuthenticatedClient, task_id: uuid.UUID) -> tuple[Task, str]:
    """One task, and the ETag that makes a later write to it conditional."""
    response = get_task.sync_detailed(task_id, client=client)
    task = expect(response, HTTPStatus.OK, Task)
    etag = response.headers["ETag"]
    unchanged = get_task.sync_detailed(task_id, client=client, if_none_match=etag)
    assert unchanged.status_code == HTTPStatus.NOT_MODIFIED and unchanged.parsed is None
    step(f"got {task.title!r} with ETag {etag}; If-None-Match with it answers 304")
    return task, etag


def conditional_patch(client: AuthenticatedClient, task: Task, etag: str, model: Task) -> tuple[Task, str]:
    """A patch with If-Match, then the same ETag again: the second write would lose the first."""
    # The patch takes typed values: the priority is the enum as read from another task, and
    # `due_at=None` sends null, which clears the due date (UNSET, the default, leaves a field be).
    patch = TaskPatch(priority=model.priority, tags=[*task.tags, "Later"], due_at=None)
    response = update_task.sync_detailed(task.id, client=client, body=patch, if_match=etag)
    updated = expect(response, HTTPStatus.OK, Task)
    assert updated.priority is model.priority
    assert updated.tags == [*task.tags, "later"] and updated.due_at is None
    assert updated.title == task.title and updated.description == task.description
    assert updated.version == task.version + 1
    fresh_etag = response.headers["ETag"]
    assert fresh_etag != etag, "a write changes the ETag"
    step(f"patched it with If-Match: priority {task.priority} -> {updated.priority}, due date cleared")

    lost = TaskPatch(title="Lost update")
    response = update_task.sync_detailed(task.id, client=client, body=lost, if_match=etag)
    problem = expect(response, HTTPStatus.PRECONDITION_FAILED, Problem)
    assert problem.status == 412 and problem.code is ProblemCode.PRECONDITION_FAILED
    assert problem.request_id == response.headers["X-Request-Id"], "a problem names its request"
    assert expect(get_task.sync_detailed(task.id, client=client), HTTPStatus.OK, Task) == updated
    step(f"a stale If-Match gets 412 ({problem.code}) and changes nothing")
    return updated, fresh_etag


def bulk(client: AuthenticatedClient, updated: Task, etag: str, plumber: Task, milk: Task) -> list[Task]:
    """Operations applied in order as one transaction: all of them, or none."""
    request = BulkRequest(
        operations=[
            BulkOperation(op=BulkOpName.CREATE, task=TaskInput(title="Pack", priority=Priority.HIGH)),
            BulkOperation(op=BulkOpName.COMPLETE, id=updated.id, if_match=etag),
            BulkOperation(
                op=BulkOpName.UPDATE, id=plumber.id, changes=TaskPatch(title="Call the plumber again")
            ),
            BulkOperation(op=BulkOpName.DELETE, id=milk.id),
        ]
    )
    response = bulk_write_tasks.sync_detailed(client=client, body=request)
    results = expect(response, HTTPStatus.OK, BulkResponse).results
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert [r.op for r in results] == [op.op for op in request.operations]
    assert [r.status for r in results] == [201, 200, 200, 200], [r.status for r in results]
    packed, completed, renamed, trashed = (r.task for r in results)
    assert packed.title == "Pack" and packed.priority is Priority.HIGH
    assert completed.id == updated.id and completed.completed and completed.completed_at
    assert renamed.title == "Call the plumber again" and renamed.tags == plumber.tags
    assert trashed.id == milk.id and trashed.deleted_at

    # That ETag is stale now: the whole request fails, naming the operation, and its create
    # does not happen either.
    stale = BulkRequest(
        operations=[
            BulkOperation(op=BulkOpName.CREATE, task=TaskInput(title="Never created")),
            BulkOperation(op=BulkOpName.REOPEN, id=updated.id, if_match=etag),
        ]
    )
    response = bulk_write_tasks.sync_detailed(client=client, body=stale)
    problem = expect(response, HTTPStatus.PRECONDITION_FAILED, Problem)
    assert problem.code is ProblemCode.PRECONDITION_FAILED and problem.operation == 1, problem
    live, _ = list_all(client, page_size=100)
    titles = ["Pack", "File the tax return", "Call the plumber again", "Book flights", "Water the plants"]
    assert sorted(t.title for t in live) == sorted(titles)
    step("a bulk request created, completed, updated and trashed; one with a stale if_match changed nothing")
    return live


def follow_changes(client: AuthenticatedClient, live: list[Task]) -> None:
    """The change feed from 0, two changes a call, following `next_since` until `has_more` is false."""
    since, calls = 0, 0
    latest: dict[uuid.UUID, ChangeEntry] = {}
    while True:
        response = list_changes.sync_detailed(client=client, since=since, limit=2)
        page = expect(response, HTTPStatus.OK, ChangesPage)
        calls += 1
        assert len(page.changes) <= 2
        for entry in page.changes:
            assert entry.change > since, "change numbers only grow"
            latest[entry.id] = entry
        since = page.next_since
        if not page.has_more:
            break
    upserts = {task_id: e.task for task_id, e in latest.items() if e.type_ is ChangeType.UPSERT}
    assert all(isinstance(t, Task) for t in upserts.values()), "an upsert carries the whole task"
    # From 0 the feed is the live tasks, each in its latest state: what listing shows.
    assert upserts == {t.id: t for t in live}, sorted(str(t) for t in upserts)
    caught_up = expect(list_changes.sync_detailed(client=client, since=since), HTTPStatus.OK, ChangesPage)
    assert caught_up.changes == [] and not caught_up.has_more and caught_up.next_since == since
    step(f"the change feed from 0 gave the {len(upserts)} live tasks in {calls} calls; then nothing new")


def main(base_url: str) -> None:
    with register(base_url) as client:
        milk, tax_return, plumber, *_ = created = create_tasks(client)
        page_through(client, created)
        filter_and_sort(client)
        task, etag = read_with_etag(client, tax_return.id)
        assert task == tax_return, "GET answers the task as it was created"
        updated, etag = conditional_patch(client, task, etag, model=milk)
        live = bulk(client, updated, etag, plumber=plumber, milk=milk)
        follow_changes(client, live)
    step("ok")


if __name__ == "__main__":
    main(sys.argv[1])
