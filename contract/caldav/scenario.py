"""A CalDAV server driven by the python `caldav` library, as a third-party client would.

    scenario.py BASE_URL USER PASSWORD [--service]

BASE_URL is the server's root (http://host:port/); the DAV root is found through
/.well-known/caldav (RFC 6764). Discovers the principal and its calendars, makes a calendar,
creates a VTODO with the properties a client cares about (SUMMARY, DESCRIPTION, DUE with a TZID,
PRIORITY, CATEGORIES, a VALARM, X-FOO and URL that must come back unchanged), reads it back,
updates and completes it, lists, searches by time range, multigets, follows sync tokens
(RFC 6578) through a create and a delete, checks that a PUT with a stale ETag answers 412 and a
PUT of broken iCalendar a 4xx, and deletes.

With --service the server is this service: after each CalDAV write the same change is checked
through the REST API (Bearer PASSWORD, the API token), and changes made through REST are checked
through the caldav library (summary, due, completion).

Prints one `caldav-scenario: ...` line per step and exits non-zero on the first failure.
"""

import argparse
import datetime as dt
import http.client
import json
import random
import string
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from base64 import b64encode
from zoneinfo import ZoneInfo

import caldav
import icalendar

parser = argparse.ArgumentParser()
parser.add_argument("base_url")
parser.add_argument("user")
parser.add_argument("password")
parser.add_argument("--service", action="store_true", help="also check every change through the REST API")
args = parser.parse_args()

BASE = args.base_url.rstrip("/")
ORIGIN = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(BASE))
API = ORIGIN + "/api/v1"
SUFFIX = "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc
DAV_NS = "DAV:"


class Failure(Exception):
    pass


def step(text):
    print(f"caldav-scenario: {text}", flush=True)


def check(condition, message):
    if not condition:
        raise Failure(message)


# --- REST (--service) ---------------------------------------------------------------------------


def rest(method, path, body=None, expect=(200,)):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {args.password}")
    request.add_header("Accept", "application/json")
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


def rest_tasks():
    return rest("GET", "/tasks?limit=100")["items"]


def rest_task_titled(title):
    found = [task for task in rest_tasks() if task["title"] == title]
    check(len(found) == 1, f"REST: expected one task titled {title!r}, found {len(found)}")
    return found[0]


def rest_time(value):
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# --- raw HTTP, for what the library does not expose -----------------------------------------------


def raw(method, url, body=None, headers=None):
    """One request without following redirects: (status, headers, text)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=15)
    credentials = b64encode(f"{args.user}:{args.password}".encode()).decode()
    all_headers = {"Authorization": f"Basic {credentials}"}
    all_headers.update(headers or {})
    payload = body.encode() if isinstance(body, str) else body
    connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=payload, headers=all_headers)
    response = connection.getresponse()
    text = response.read().decode(errors="replace")
    connection.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, text


def hrefs_of(multistatus):
    root = ET.fromstring(multistatus)
    return {urllib.parse.unquote(h.text.strip()) for h in root.iter(f"{{{DAV_NS}}}href") if h.text}


def path_of(url):
    return urllib.parse.unquote(urllib.parse.urlsplit(str(url)).path)


# --- iCalendar ------------------------------------------------------------------------------------

PARIS_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


def stamp():
    return dt.datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def rich_vtodo(uid, summary, due_paris, url):
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//todo service//caldav-scenario//EN",
        PARIS_VTIMEZONE,
        "BEGIN:VTODO",
        f"UID:{uid}",
        f"DTSTAMP:{stamp()}",
        f"SUMMARY:{summary}",
        "DESCRIPTION:First line\\nsecond line\\, with a comma\\; and a semicolon",
        f"DUE;TZID=Europe/Paris:{due_paris.strftime('%Y%m%dT%H%M%S')}",
        "PRIORITY:1",
        "CATEGORIES:work,caldav",
        "STATUS:NEEDS-ACTION",
        "X-FOO:bar baz",
        f"URL:{url}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Reminder",
        "TRIGGER;RELATED=END:-PT15M",
        "END:VALARM",
        "END:VTODO",
        "END:VCALENDAR",
    ]
    return "\r\n".join("\r\n".join(line.split("\n")) for line in lines) + "\r\n"


def plain_vtodo(uid, summary, due_utc, priority):
    return "\r\n".join([
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//todo service//caldav-scenario//EN",
        "BEGIN:VTODO",
        f"UID:{uid}",
        f"DTSTAMP:{stamp()}",
        f"SUMMARY:{summary}",
        f"DUE:{due_utc.strftime('%Y%m%dT%H%M%SZ')}",
        f"PRIORITY:{priority}",
        "STATUS:NEEDS-ACTION",
        "END:VTODO",
        "END:VCALENDAR",
    ]) + "\r\n"


def component(obj):
    todos = [c for c in icalendar.Calendar.from_ical(obj.data).walk("VTODO")]
    check(len(todos) == 1, f"{obj.url}: expected one VTODO, found {len(todos)}")
    return todos[0]


def categories(vtodo):
    value = vtodo.get("CATEGORIES")
    if value is None:
        return set()
    values = value if isinstance(value, list) else [value]
    return {str(c) for v in values for c in v.cats}


def due_of(vtodo):
    due = vtodo.get("DUE")
    check(due is not None, "the VTODO has no DUE")
    value = due.dt
    check(isinstance(value, dt.datetime), f"DUE is a date, not a date-time: {value!r}")
    return value


def reload(calendar, obj):
    fresh = calendar.object_by_url(obj.url) if hasattr(calendar, "object_by_url") else None
    if fresh is None:
        fresh = caldav.Todo(client=calendar.client, url=obj.url, parent=calendar)
    fresh.load()
    return fresh


def by_summary(todos, summary):
    return [t for t in todos if str(component(t).get("SUMMARY")) == summary]


def etag(url):
    status, headers, _ = raw("GET", str(url))
    check(status == 200, f"GET {url} answered {status}")
    check("etag" in headers, f"GET {url} carries no ETag")
    return headers["etag"]


# --- the scenario ---------------------------------------------------------------------------------


def run():
    now = dt.datetime.now(UTC).replace(microsecond=0)

    # Discovery: /.well-known/caldav must redirect to the DAV root (RFC 6764 section 5).
    status, headers, text = raw("PROPFIND", ORIGIN + "/.well-known/caldav", "", {"Depth": "0"})
    check(status in (301, 302, 303, 307, 308) and "location" in headers,
          f"PROPFIND /.well-known/caldav answered {status}, not a redirect: {text[:300]}")
    dav_root = urllib.parse.urljoin(ORIGIN + "/.well-known/caldav", headers["location"])
    if urllib.parse.urlsplit(BASE).path not in ("", "/"):
        dav_root = BASE + "/"
    step(f"/.well-known/caldav answers {status} to {headers['location']}; DAV root {dav_root}")

    client = caldav.DAVClient(url=dav_root, username=args.user, password=args.password)
    principal = client.principal()
    step(f"principal {principal.url}")
    home = principal.calendar_home_set
    step(f"calendar home {home.url}")
    before = principal.calendars()
    step(f"{len(before)} calendar(s) before: {', '.join(sorted(str(c.url) for c in before)) or 'none'}")

    name = f"Scenario {SUFFIX}"
    calendar = principal.make_calendar(name=name)
    listed = [c for c in principal.calendars() if c.url.canonical() == calendar.url.canonical()]
    check(listed, f"the new calendar {calendar.url} is not among principal.calendars()")
    check(listed[0].get_display_name() == name, f"the new calendar's displayname is {listed[0].get_display_name()!r}, not {name!r}")
    step(f"made calendar {name!r} at {calendar.url}")
    project = None
    if args.service:
        projects = [p for p in rest("GET", "/projects")["items"] if p["name"] == name]
        check(len(projects) == 1, f"REST: expected one project named {name!r}, found {len(projects)}")
        project = projects[0]
        # The library MKCALENDARs {home}/{uuid4}/ and keeps using that URL, so the collection must
        # answer there: the project's id is the segment the client chose (or an alias of it).
        check(f"/{project['id']}/" in str(calendar.url),
              f"MKCALENDAR {calendar.url} made project {project['id']}, but the client keeps using the URL it chose")
        step(f"REST: project {project['id']} named {name!r}")

    # Create the rich task.
    uid_a = f"caldav-scenario-{uuid.uuid4()}"
    summary_a = f"Scenario task {SUFFIX}"
    due_a = dt.datetime.combine(now.date() + dt.timedelta(days=10), dt.time(18, 0), tzinfo=PARIS)
    link = f"https://example.com/tasks/{SUFFIX}?a=1&b=2"
    task_a = calendar.add_todo(rich_vtodo(uid_a, summary_a, due_a, link))
    step(f"created VTODO {uid_a} at {task_a.url}")

    task_a = reload(calendar, task_a)
    vtodo = component(task_a)
    check(str(vtodo.get("UID")) == uid_a, f"UID came back as {vtodo.get('UID')!r}")
    check(str(vtodo.get("SUMMARY")) == summary_a, f"SUMMARY came back as {vtodo.get('SUMMARY')!r}")
    description = "First line\nsecond line, with a comma; and a semicolon"
    check(str(vtodo.get("DESCRIPTION")) == description, f"DESCRIPTION came back as {vtodo.get('DESCRIPTION')!r}")
    due = due_of(vtodo)
    check(due == due_a, f"DUE came back as {due!r}, not {due_a!r}")
    check(due.utcoffset() == due_a.utcoffset(), f"DUE came back with offset {due.utcoffset()}, not Europe/Paris's")
    tzid = vtodo["DUE"].params.get("TZID")
    check(tzid == "Europe/Paris" or str(getattr(due.tzinfo, "key", "")) == "Europe/Paris",
          f"DUE came back with TZID {tzid!r}")
    check(int(vtodo.get("PRIORITY", 0)) == 1, f"PRIORITY came back as {vtodo.get('PRIORITY')!r}")
    check(categories(vtodo) == {"work", "caldav"}, f"CATEGORIES came back as {categories(vtodo)}")
    check(str(vtodo.get("X-FOO")) == "bar baz", f"X-FOO came back as {vtodo.get('X-FOO')!r}")
    check(str(vtodo.get("URL")) == link, f"URL came back as {vtodo.get('URL')!r}")
    alarms = list(vtodo.walk("VALARM"))
    check(len(alarms) == 1, f"expected one VALARM, found {len(alarms)}")
    trigger = alarms[0]["TRIGGER"]
    check(trigger.dt == dt.timedelta(minutes=-15), f"the VALARM's TRIGGER came back as {trigger.to_ical()!r}")
    check(trigger.params.get("RELATED", "START") == "END", f"the TRIGGER's RELATED came back as {trigger.params.get('RELATED')!r}")
    step("read back: SUMMARY, DESCRIPTION, DUE;TZID=Europe/Paris, PRIORITY, CATEGORIES, VALARM, X-FOO, URL unchanged")

    rest_a = None
    if args.service:
        rest_a = rest_task_titled(summary_a)
        check(rest_a["description"] == description, f"REST description is {rest_a['description']!r}")
        check(rest_time(rest_a["due_at"]) == due_a, f"REST due_at is {rest_a['due_at']}, not {due_a.astimezone(UTC)}")
        check(rest_a["timezone"] == "Europe/Paris", f"REST timezone is {rest_a['timezone']!r}")
        check(rest_a["priority"] == "high", f"REST priority is {rest_a['priority']!r} for PRIORITY:1")
        check(set(rest_a["tags"]) == {"work", "caldav"}, f"REST tags are {rest_a['tags']}")
        check(rest_a["completed"] is False, "REST says the new task is completed")
        check(rest_a["project_id"] == project["id"], f"REST project_id is {rest_a['project_id']}, not {project['id']}")
        reminder = rest_time(rest_a.get("reminder_at"))
        if reminder != due_a - dt.timedelta(minutes=15):
            step(f"note: REST reminder_at is {rest_a.get('reminder_at')}, not DUE-15min (VALARM mapping not in the contract)")
        step(f"REST: task {rest_a['id']} has the title, description, due_at, timezone, priority high, tags, project")

    # Update the summary.
    summary_a2 = f"Scenario task {SUFFIX} renamed"
    task_a.icalendar_component["SUMMARY"] = summary_a2
    task_a.save()
    task_a = reload(calendar, task_a)
    vtodo = component(task_a)
    check(str(vtodo.get("SUMMARY")) == summary_a2, f"after the update SUMMARY is {vtodo.get('SUMMARY')!r}")
    check(str(vtodo.get("X-FOO")) == "bar baz" and str(vtodo.get("URL")) == link,
          "after the update X-FOO or URL changed or went")
    check(len(list(vtodo.walk("VALARM"))) == 1, "after the update the VALARM went")
    step(f"updated SUMMARY to {summary_a2!r}; X-FOO, URL and VALARM kept")
    if args.service:
        got = rest("GET", f"/tasks/{rest_a['id']}")
        check(got["title"] == summary_a2, f"REST title is {got['title']!r} after the CalDAV update")
        step("REST: the title changed")

    # Complete.
    task_a.complete()
    task_a = reload(calendar, task_a)
    vtodo = component(task_a)
    check(str(vtodo.get("STATUS")) == "COMPLETED", f"after complete() STATUS is {vtodo.get('STATUS')!r}")
    check(vtodo.get("COMPLETED") is not None, "after complete() there is no COMPLETED")
    step("completed: STATUS:COMPLETED with COMPLETED")
    if args.service:
        got = rest("GET", f"/tasks/{rest_a['id']}")
        check(got["completed"] is True and got["completed_at"], f"REST completed={got['completed']} completed_at={got['completed_at']}")
        step("REST: completed")

    # A second, pending task due in 3 days.
    uid_b = f"caldav-scenario-{uuid.uuid4()}"
    summary_b = f"Scenario second {SUFFIX}"
    due_b = now + dt.timedelta(days=3)
    task_b = calendar.add_todo(plain_vtodo(uid_b, summary_b, due_b, 5))
    step(f"created a second VTODO {uid_b} due {due_b.isoformat()} with PRIORITY 5")
    rest_b = None
    if args.service:
        rest_b = rest_task_titled(summary_b)
        check(rest_b["priority"] == "medium", f"REST priority is {rest_b['priority']!r} for PRIORITY:5")
        check(rest_time(rest_b["due_at"]) == due_b, f"REST due_at is {rest_b['due_at']}")
        step(f"REST: task {rest_b['id']} medium, due {rest_b['due_at']}")

    pending = calendar.todos()
    check(by_summary(pending, summary_b), "todos() leaves out the pending task")
    check(not by_summary(pending, summary_a2), "todos() lists the completed task")
    everything = calendar.todos(include_completed=True)
    check(by_summary(everything, summary_b) and by_summary(everything, summary_a2),
          f"todos(include_completed=True) lists {[str(component(t).get('SUMMARY')) for t in everything]}")
    step(f"todos(): {len(pending)} pending; todos(include_completed=True): {len(everything)}")

    # calendar-query by time range on DUE, through the library and raw (to see what the server itself filters).
    start, end = now + dt.timedelta(days=2), now + dt.timedelta(days=5)
    found = calendar.search(todo=True, start=start, end=end, include_completed=True)
    check(by_summary(found, summary_b) and not by_summary(found, summary_a2),
          f"search(todo=True, {start}..{end}) found {[str(component(t).get('SUMMARY')) for t in found]}")
    fmt = "%Y%m%dT%H%M%SZ"
    query = f"""<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO">
    <C:time-range start="{start.strftime(fmt)}" end="{end.strftime(fmt)}"/>
  </C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""
    status, _, text = raw("REPORT", str(calendar.url), query, {"Depth": "1", "Content-Type": "application/xml; charset=utf-8"})
    check(status == 207, f"calendar-query REPORT answered {status}: {text[:300]}")
    hrefs = hrefs_of(text)
    check(path_of(task_b.url) in hrefs and path_of(task_a.url) not in hrefs,
          f"the server's time-range calendar-query returned {sorted(hrefs)}")
    step("search by time range on DUE: the task due in 3 days, not the one due in 10 (library and raw REPORT)")

    got = calendar.multiget([task_a.url, task_b.url], raise_notfound=True)
    uids = {str(component(o).get("UID")) for o in got}
    check(uids == {uid_a, uid_b}, f"multiget returned UIDs {uids}")
    step("calendar-multiget returned both tasks with their data")

    # Sync tokens (RFC 6578), without the library's silent fallback to a full listing.
    initial = calendar.objects_by_sync_token(load_objects=False, disable_fallback=True)
    token = initial.sync_token
    check(token and not str(token).startswith("fake-"), f"the initial sync-collection gave no real token: {token!r}")
    urls = {path_of(o.url) for o in initial}
    check({path_of(task_a.url), path_of(task_b.url)} <= urls, f"the initial sync-collection listed {sorted(urls)}")
    step(f"sync-collection: token {token}, {len(urls)} member(s)")

    uid_c = f"caldav-scenario-{uuid.uuid4()}"
    summary_c = f"Scenario third {SUFFIX}"
    task_c = calendar.add_todo(plain_vtodo(uid_c, summary_c, now + dt.timedelta(days=20), 9))
    changes = calendar.objects_by_sync_token(sync_token=token, load_objects=True, disable_fallback=True)
    changed = {path_of(o.url) for o in changes}
    check(path_of(task_c.url) in changed, f"the sync after a create lists {sorted(changed)}, not {path_of(task_c.url)}")
    check(path_of(task_a.url) not in changed and path_of(task_b.url) not in changed,
          f"the sync after a create lists unchanged members too: {sorted(changed)}")
    loaded = [o for o in changes if path_of(o.url) == path_of(task_c.url)][0]
    check(str(component(loaded).get("UID")) == uid_c, "the synced object's data is not the created task")
    check(changes.sync_token != token, "the sync token did not move after a create")
    step(f"sync after a create: only the new task; token {changes.sync_token}")
    if args.service:
        rest_c = rest_task_titled(summary_c)
        check(rest_c["priority"] == "low", f"REST priority is {rest_c['priority']!r} for PRIORITY:9")
        step("REST: the third task is there, priority low")

    token = changes.sync_token
    task_b.delete()
    changes = calendar.objects_by_sync_token(sync_token=token, load_objects=False, disable_fallback=True)
    deleted = {path_of(u) for u in changes.deleted_urls}
    check(path_of(task_b.url) in deleted, f"the sync after a delete reports removed {sorted(deleted)}, not {path_of(task_b.url)}")
    step("sync after a delete: the task is reported removed (404 in the multistatus)")
    if args.service:
        check(not [t for t in rest_tasks() if t["title"] == summary_b], "REST still lists the deleted task")
        rest("GET", f"/tasks/{rest_b['id']}", expect=(404, 410))
        step("REST: the deleted task is gone")
    token = changes.sync_token

    # Conditional PUTs.
    url_c = str(task_c.url)
    etag_1 = etag(url_c)
    body_2 = plain_vtodo(uid_c, summary_c + " v2", now + dt.timedelta(days=20), 9)
    status, headers, text = raw("PUT", url_c, body_2, {"Content-Type": "text/calendar; charset=utf-8", "If-Match": etag_1})
    check(status in (200, 204), f"PUT with the current ETag answered {status}: {text[:300]}")
    etag_2 = etag(url_c)
    check(etag_2 != etag_1, "the ETag did not change after a PUT")
    body_3 = plain_vtodo(uid_c, summary_c + " v3", now + dt.timedelta(days=20), 9)
    status, _, text = raw("PUT", url_c, body_3, {"Content-Type": "text/calendar; charset=utf-8", "If-Match": etag_1})
    check(status == 412, f"PUT with a stale ETag answered {status}, not 412: {text[:300]}")
    status, _, text = raw("PUT", url_c, body_3, {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
    check(status == 412, f"PUT with If-None-Match: * over an existing resource answered {status}, not 412: {text[:300]}")
    status, headers, text = raw("GET", url_c)
    check(status == 200 and "v2" in text and "v3" not in text and headers.get("etag") == etag_2,
          "after the refused PUTs the resource is not the one the current-ETag PUT wrote")
    step(f"PUT with If-Match {etag_1}: 2xx; again with that stale ETag: 412; If-None-Match: * : 412")
    if args.service:
        check(rest_task_titled(summary_c + " v2"), "")
        step("REST: the raw PUT's title is there, the refused one's is not")

    status, _, text = raw("PUT", str(calendar.url) + f"broken-{SUFFIX}.ics", "BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n",
                          {"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
    check(400 <= status < 500, f"PUT of broken iCalendar answered {status}, not 4xx: {text[:300]}")
    step(f"PUT of broken iCalendar: {status}")

    if args.service:
        reverse(calendar, project, now)

    # Delete a task, then the calendar.
    task_a.delete()
    status, _, _ = raw("GET", str(task_a.url))
    check(status == 404, f"GET of the deleted task answered {status}, not 404")
    check(not by_summary(calendar.todos(include_completed=True), summary_a2), "todos() still lists the deleted task")
    step("deleted the first task: GET answers 404")
    if args.service:
        check(not [t for t in rest_tasks() if t["title"] == summary_a2], "REST still lists the deleted task")
        step("REST: the first task is gone")

    calendar.delete()
    left = [c for c in principal.calendars() if c.url.canonical() == calendar.url.canonical()]
    check(not left, "the deleted calendar is still among principal.calendars()")
    step("deleted the calendar")
    if args.service:
        check(not [p for p in rest("GET", "/projects")["items"] if p["id"] == project["id"]], "REST still lists the deleted calendar's project")
        step("REST: the project is gone")


def reverse(calendar, project, now):
    """Changes made through REST, seen by the caldav library."""
    title = f"REST task {SUFFIX}"
    due = dt.datetime.combine(now.date() + dt.timedelta(days=4), dt.time(9, 30), tzinfo=PARIS)
    token = calendar.objects_by_sync_token(disable_fallback=True).sync_token
    created = rest("POST", "/tasks", {"title": title, "due_at": due.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                                      "timezone": "Europe/Paris", "priority": "high", "tags": ["rest"],
                                      "project_id": project["id"]}, expect=(201,))
    step(f"REST: created task {created['id']} {title!r}")
    found = by_summary(calendar.todos(), title)
    check(len(found) == 1, f"todos() shows {len(found)} task(s) titled {title!r}")
    vtodo = component(found[0])
    check(due_of(vtodo) == due, f"the REST task's DUE is {due_of(vtodo)!r}, not {due!r}")
    check(1 <= int(vtodo.get("PRIORITY", 0)) <= 4, f"the REST task's PRIORITY is {vtodo.get('PRIORITY')!r} for high")
    check("rest" in categories(vtodo), f"the REST task's CATEGORIES are {categories(vtodo)}")
    changes = calendar.objects_by_sync_token(sync_token=token, disable_fallback=True)
    check(path_of(found[0].url) in {path_of(o.url) for o in changes}, "the sync token does not report the REST-created task")
    step("caldav sees it: SUMMARY, DUE, PRIORITY 1-4, CATEGORIES; the sync token reports it")

    token = changes.sync_token
    renamed = title + " renamed"
    rest("PATCH", f"/tasks/{created['id']}", {"title": renamed})
    changes = calendar.objects_by_sync_token(sync_token=token, load_objects=True, disable_fallback=True)
    check([o for o in changes if str(component(o).get("SUMMARY")) == renamed], "the sync token does not report the REST rename")
    step("REST: renamed; caldav's sync reports the new SUMMARY")

    rest("PATCH", f"/tasks/{created['id']}/complete", {"completed": True})
    check(not by_summary(calendar.todos(), renamed), "todos() still lists the task completed through REST")
    done = by_summary(calendar.todos(include_completed=True), renamed)
    check(len(done) == 1 and str(component(done[0]).get("STATUS")) == "COMPLETED",
          "the task completed through REST is not STATUS:COMPLETED")
    step("REST: completed; caldav sees STATUS:COMPLETED and todos() leaves it out")


try:
    run()
except Failure as failure:
    print(f"caldav-scenario: FAILED: {failure}", file=sys.stderr, flush=True)
    sys.exit(1)
except caldav.lib.error.DAVError as error:
    print(f"caldav-scenario: FAILED: the caldav library raised {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    sys.exit(1)
step("ok")
