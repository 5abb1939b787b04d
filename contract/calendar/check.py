"""The calendar feed read by an independent parser: the Python `icalendar` package.

    check.py BASE_URL OUT_DIR

Registers a user, makes tasks through the REST API, creates feeds, fetches them and checks with
`icalendar` that the events and to-dos match what was made: titles, due times as instants and in
the task's zone, all-day dates, tags, priorities, rules, alarms; that each VTIMEZONE the feed
ships, turned into a tzinfo by icalendar, agrees with the tz database; and that the
`icalendar` command reads the files; no component has a parse error. Prints one `calendar: ` line per check that passed.
"""

import datetime as dt
import json
import sys
import urllib.request
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

BASE, OUT = sys.argv[1], Path(sys.argv[2])
OUT.mkdir(parents=True, exist_ok=True)


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as resp:
        raw = resp.read()
        return resp.status, resp.headers, (json.loads(raw) if raw and resp.headers.get_content_type().endswith("json") else raw)


def ok(what):
    print(f"calendar: {what}")


def fetch(url, name):
    path = url[url.index("/calendar/"):]
    status, headers, body = call("GET", path)
    assert status == 200, status
    assert headers["Content-Type"] == "text/calendar; charset=utf-8", headers
    (OUT / name).write_bytes(body)
    cal = icalendar.Calendar.from_ical(body)
    # icalendar parses leniently and records each property it could not read on its component.
    broken = [(c.name, c.errors) for c in cal.walk() if c.errors]
    assert not broken, broken
    return cal


status, _, auth = call("POST", "/api/v1/auth/register", {"email": f"cal-{uuid.uuid4().hex}@example.com", "password": "correct horse battery"})
token = auth["access_token"]
_, _, project = call("POST", "/api/v1/projects", {"name": "Work"}, token)

PARIS, NY = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
tasks = {
    "Dentist; Bob, 9:30 ☺": dict(due_at="2027-07-14T09:30:00+02:00", timezone="Europe/Paris", tags=["health", "a,b"], priority="high", reminder_at="2027-07-14T09:15:00+02:00"),
    "Rent": dict(due_at="2027-08-01T00:00:00+02:00", timezone="Europe/Paris", priority="medium"),
    "Standup": dict(due_at="2027-03-01T09:00:00-05:00", timezone="America/New_York", priority="low", recurrence_rule="FREQ=WEEKLY;BYDAY=MO", project_id=project["id"], description="Line one\nLine two; with, punctuation"),
    "Someday": dict(),
    "Done": dict(due_at="2027-07-20T10:00:00Z"),
}
ids = {}
for title, fields in tasks.items():
    status, _, task = call("POST", "/api/v1/tasks", {"title": title, **fields}, token)
    assert status == 201
    ids[title] = task["id"]
call("POST", f"/api/v1/tasks/{ids['Done']}/toggle", None, token)
ok(f"made {len(tasks)} tasks through REST, one completed")

_, _, feed = call("POST", "/api/v1/calendar-feeds", {"name": "All my tasks"}, token)
_, _, work_feed = call("POST", "/api/v1/calendar-feeds", {"project_id": project["id"]}, token)

# -- events -------------------------------------------------------------------------------------
cal = fetch(feed["url"], "events.ics")
assert cal["VERSION"] == "2.0" and str(cal["X-WR-CALNAME"]) == "All my tasks", cal
events = {str(e["SUMMARY"]): e for e in cal.walk("VEVENT")}
assert set(events) == {"Dentist; Bob, 9:30 ☺", "Rent", "Standup"}, set(events)
dentist = events["Dentist; Bob, 9:30 ☺"].decoded("DTSTART")
assert dentist == dt.datetime(2027, 7, 14, 9, 30, tzinfo=PARIS), dentist
assert str(dentist.tzinfo) in ("Europe/Paris",) or getattr(dentist.tzinfo, "key", "") == "Europe/Paris", dentist.tzinfo
assert events["Dentist; Bob, 9:30 ☺"].decoded("DTEND") - dentist == dt.timedelta(hours=1)
assert [str(c) for c in events["Dentist; Bob, 9:30 ☺"]["CATEGORIES"].cats] == ["health", "a,b"]
assert int(events["Dentist; Bob, 9:30 ☺"]["PRIORITY"]) == 1
alarm = events["Dentist; Bob, 9:30 ☺"].walk("VALARM")[0]
assert alarm.decoded("TRIGGER") == dt.timedelta(minutes=-15), alarm.decoded("TRIGGER")
rent = events["Rent"]
assert rent.decoded("DTSTART") == dt.date(2027, 8, 1) and not isinstance(rent.decoded("DTSTART"), dt.datetime)
assert rent.decoded("DTEND") == dt.date(2027, 8, 2)
standup = events["Standup"].decoded("DTSTART")
assert standup == dt.datetime(2027, 3, 1, 9, 0, tzinfo=NY) and standup.utcoffset() == dt.timedelta(hours=-5)
assert "Someday" not in events and "Done" not in events
uids = [str(e["UID"]) for e in events.values()]
assert len(set(uids)) == 3 and all("@" in u for u in uids), uids
ok("events: titles, due times in their zones, the all-day date, tags, priority and alarm match")

# -- the VTIMEZONEs agree with the tz database ----------------------------------------------------
zones = {str(tz["TZID"]): tz for tz in cal.walk("VTIMEZONE")}
assert set(zones) == {"Europe/Paris", "America/New_York"}, set(zones)
for name, component in zones.items():
    shipped = component.to_tz()
    real = ZoneInfo(name)
    for month in range(1, 13):
        for year in (2027, 2028):
            local = dt.datetime(year, month, 15, 12, 0)
            assert shipped.utcoffset(local) == local.replace(tzinfo=real).utcoffset(), (name, local)
ok("VTIMEZONEs: icalendar's tzinfo from each agrees with the tz database month by month over 2027-2028")

# -- to-dos -------------------------------------------------------------------------------------
cal = fetch(feed["url"] + "?component=vtodo", "todos.ics")
todos = {str(t["SUMMARY"]): t for t in cal.walk("VTODO")}
assert set(todos) == {"Dentist; Bob, 9:30 ☺", "Rent", "Standup", "Someday"}, set(todos)
assert all(str(t["STATUS"]) == "NEEDS-ACTION" for t in todos.values())
assert {k: int(t["PRIORITY"]) for k, t in todos.items()} == {"Dentist; Bob, 9:30 ☺": 1, "Rent": 5, "Standup": 9, "Someday": 5}
standup = todos["Standup"]
assert standup.decoded("DUE") == dt.datetime(2027, 3, 1, 9, 0, tzinfo=NY)
assert standup["RRULE"]["FREQ"] == ["WEEKLY"] and standup["RRULE"]["BYDAY"] == ["MO"], standup["RRULE"]
assert str(standup["DESCRIPTION"]) == "Line one\nLine two; with, punctuation"
assert todos["Rent"].decoded("DUE") == dt.date(2027, 8, 1)
assert "DUE" not in todos["Someday"]
trigger = todos["Dentist; Bob, 9:30 ☺"].walk("VALARM")[0]["TRIGGER"]
assert trigger.params.get("RELATED") == "END" and trigger.dt == dt.timedelta(minutes=-15)
ok("to-dos: every open task, with status, due, rule, description, priority 1/5/9 and a DUE-relative alarm")

# -- a project's feed ---------------------------------------------------------------------------
cal = fetch(work_feed["url"], "work.ics")
assert [str(e["SUMMARY"]) for e in cal.walk("VEVENT")] == ["Standup"]
assert str(cal["X-WR-CALNAME"]) == "Work"
ok("a project's feed holds that project's tasks only")
