"""The server side of contract/caldav/vdirsyncer.sh: makes and checks tasks without vdirsyncer.

    server_side.py BASE_URL USER PASSWORD [--service] [--collection ID] COMMAND ARGS...

Without --service it goes through the python caldav library (the collection is found among
the principal's calendars by the last segment of its URL); with --service through the REST API
(Bearer PASSWORD, the API token). Commands:

    make-collection NAME             prints the new collection's id (a calendar, or a REST project)
    expect TITLE [--completed | --pending] [--due EPOCH] [--priority N] [--category C]
    absent TITLE
    create TITLE --due EPOCH         a pending task
    rename TITLE NEW_TITLE
    complete TITLE

Exits non-zero with `caldav-server-side: FAILED: ...` when a check fails.
"""

import argparse
import datetime as dt
import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from base64 import b64encode

parser = argparse.ArgumentParser()
parser.add_argument("base_url")
parser.add_argument("user")
parser.add_argument("password")
parser.add_argument("--service", action="store_true")
parser.add_argument("--collection")
parser.add_argument("command", choices=["make-collection", "expect", "absent", "create", "rename", "complete"])
parser.add_argument("title")
parser.add_argument("new_title", nargs="?")
parser.add_argument("--completed", action="store_true")
parser.add_argument("--pending", action="store_true")
parser.add_argument("--due", type=int)
parser.add_argument("--priority", type=int)
parser.add_argument("--category")
args = parser.parse_args()

ORIGIN = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(args.base_url))
API = ORIGIN + "/api/v1"
UTC = dt.timezone.utc


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def say(text):
    print(f"caldav-server-side: {text}", file=sys.stderr, flush=True)


def rest_priority(value):
    """RFC 5545 PRIORITY as this service's REST priority: 1-4 high, 5 medium, 6-9 low, 0 medium."""
    return "high" if 1 <= value <= 4 else "low" if value >= 6 else "medium"


# --- through REST ---------------------------------------------------------------------------------


def rest(method, path, body=None, expect=(200,)):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {args.password}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode(errors="replace")
    if status not in expect:
        raise Failure(f"REST {method} {path} answered {status}, expected {expect}: {text[:500]}")
    return json.loads(text) if text.strip() else None


def rest_titled(title):
    return [t for t in rest("GET", "/tasks?limit=100")["items"] if t["title"] == title]


def rest_one(title):
    found = rest_titled(title)
    check(len(found) == 1, f"REST: expected one task titled {title!r}, found {len(found)}")
    return found[0]


class Rest:
    def make_collection(self, name):
        return rest("POST", "/projects", {"name": name}, expect=(201,))["id"]

    def expect(self, title):
        task = rest_one(title)
        if args.completed or args.pending:
            check(task["completed"] is args.completed, f"REST: {title!r} has completed={task['completed']}")
        if args.due is not None:
            due = dt.datetime.fromisoformat(task["due_at"].replace("Z", "+00:00")) if task["due_at"] else None
            check(due == dt.datetime.fromtimestamp(args.due, UTC), f"REST: {title!r} is due {task['due_at']}, not {dt.datetime.fromtimestamp(args.due, UTC)}")
        if args.priority is not None:
            check(task["priority"] == rest_priority(args.priority), f"REST: {title!r} has priority {task['priority']!r} for PRIORITY {args.priority}")
        if args.category:
            check(args.category in task["tags"], f"REST: {title!r} has tags {task['tags']}, not {args.category!r}")
        if args.collection:
            check(task["project_id"] == (None if args.collection == "inbox" else args.collection),
                  f"REST: {title!r} is in project {task['project_id']}, not {args.collection}")
        return task

    def absent(self, title):
        check(not rest_titled(title), f"REST still lists {title!r}")

    def create(self, title):
        body = {"title": title, "due_at": dt.datetime.fromtimestamp(args.due, UTC).isoformat().replace("+00:00", "Z")}
        if args.collection and args.collection != "inbox":
            body["project_id"] = args.collection
        rest("POST", "/tasks", body, expect=(201,))

    def rename(self, title, new_title):
        rest("PATCH", f"/tasks/{rest_one(title)['id']}", {"title": new_title})

    def complete(self, title):
        rest("PATCH", f"/tasks/{rest_one(title)['id']}/complete", {"completed": True})


# --- through the caldav library -------------------------------------------------------------------


class CalDav:
    def __init__(self):
        import caldav

        self.caldav = caldav
        parts = urllib.parse.urlsplit(ORIGIN)
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=15)
        credentials = b64encode(f"{args.user}:{args.password}".encode()).decode()
        connection.request("PROPFIND", "/.well-known/caldav", headers={"Authorization": f"Basic {credentials}", "Depth": "0"})
        response = connection.getresponse()
        location = response.getheader("location")
        check(response.status in (301, 302, 307, 308) and location, f"/.well-known/caldav answered {response.status}")
        client = caldav.DAVClient(url=urllib.parse.urljoin(ORIGIN + "/.well-known/caldav", location),
                                  username=args.user, password=args.password)
        self.principal = client.principal()

    def calendar(self):
        for calendar in self.principal.calendars():
            if str(calendar.url).rstrip("/").rsplit("/", 1)[-1] == args.collection:
                return calendar
        raise Failure(f"no calendar {args.collection!r} among {[str(c.url) for c in self.principal.calendars()]}")

    def titled(self, title):
        found = []
        for todo in self.calendar().todos(include_completed=True):
            vtodo = todo.icalendar_component
            if str(vtodo.get("SUMMARY")) == title:
                found.append(todo)
        return found

    def one(self, title):
        found = self.titled(title)
        check(len(found) == 1, f"caldav: expected one task titled {title!r}, found {len(found)}")
        return found[0]

    def make_collection(self, name):
        return str(self.principal.make_calendar(name=name).url).rstrip("/").rsplit("/", 1)[-1]

    def expect(self, title):
        vtodo = self.one(title).icalendar_component
        status = str(vtodo.get("STATUS", "NEEDS-ACTION"))
        if args.completed:
            check(status == "COMPLETED", f"caldav: {title!r} has STATUS {status}")
        if args.pending:
            check(status in ("NEEDS-ACTION", "IN-PROCESS"), f"caldav: {title!r} has STATUS {status}")
        if args.due is not None:
            due = vtodo.get("DUE")
            check(due is not None and due.dt == dt.datetime.fromtimestamp(args.due, UTC),
                  f"caldav: {title!r} is due {due.dt if due else None}, not {dt.datetime.fromtimestamp(args.due, UTC)}")
        if args.priority is not None:
            check(int(vtodo.get("PRIORITY", 0)) == args.priority, f"caldav: {title!r} has PRIORITY {vtodo.get('PRIORITY')}")
        if args.category:
            cats = vtodo.get("CATEGORIES")
            values = cats if isinstance(cats, list) else [cats] if cats else []
            names = {str(c) for v in values for c in v.cats}
            check(args.category in names, f"caldav: {title!r} has CATEGORIES {names}")

    def absent(self, title):
        check(not self.titled(title), f"caldav still lists {title!r}")

    def create(self, title):
        due = dt.datetime.fromtimestamp(args.due, UTC).strftime("%Y%m%dT%H%M%SZ")
        now = dt.datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.calendar().add_todo("\r\n".join([
            "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//todo service//caldav-server-side//EN",
            "BEGIN:VTODO", f"UID:{uuid.uuid4()}", f"DTSTAMP:{now}", f"SUMMARY:{title}", f"DUE:{due}",
            "STATUS:NEEDS-ACTION", "END:VTODO", "END:VCALENDAR", ""]))

    def rename(self, title, new_title):
        todo = self.one(title)
        todo.icalendar_component["SUMMARY"] = new_title
        todo.save()

    def complete(self, title):
        self.one(title).complete()


try:
    side = Rest() if args.service else CalDav()
    if args.command == "make-collection":
        print(side.make_collection(args.title))
    elif args.command == "rename":
        side.rename(args.title, args.new_title)
    else:
        getattr(side, args.command)(args.title)
except Failure as failure:
    print(f"caldav-server-side: FAILED: {failure}", file=sys.stderr, flush=True)
    sys.exit(1)
