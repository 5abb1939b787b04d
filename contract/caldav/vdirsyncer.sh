#!/usr/bin/env bash
# A CalDAV server driven by vdirsyncer and todoman, as a user of both would: vdirsyncer keeps a
# folder of .ics files in step with the server's task lists, and todoman edits that folder.
#
#   contract/caldav/vdirsyncer.sh BASE_URL USER PASSWORD WORKDIR [--service]
#
# Makes a task list on the server, writes a vdirsyncer config (a caldav storage with
# item_types = ["VTODO"], a filesystem storage under WORKDIR/calendars) and a todoman config,
# runs `vdirsyncer discover`, `sync` and `metasync`, makes two tasks with `todo new` and completes one with
# `todo done`, syncs, and checks them on the server. Then changes the server side (a rename, a new
# task, a completion), syncs, and checks that `todo --porcelain list` shows it.
#
# The server side is read and written by contract/caldav/server_side.py: through the python caldav
# library, or with --service through this service's REST API. vdirsyncer, todoman and python
# must be on PATH (scripts/caldav-clients puts target/caldav-venv/bin there).
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 BASE_URL USER PASSWORD WORKDIR [--service]" >&2
  exit 2
fi
base="${1%/}"
user="$2"
password="$3"
work="$4"
service="${5:-}"
here="$(cd "$(dirname "$0")" && pwd)"
say() { echo "caldav-vdirsyncer: $*"; }
fail() { echo "caldav-vdirsyncer: FAILED: $*" >&2; exit 1; }
server() { python "$here/server_side.py" "$base" "$user" "$password" $service ${collection:+--collection "$collection"} "$@"; }
quote() { python -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$1"; }
# One run of a client, bounded, its output kept in WORKDIR/log.
run() {
  echo "\$ $*" >>"$work/log"
  local status=0
  timeout 120 "$@" 2>>"$work/log" || status=$?
  [ "$status" -eq 0 ] || { tail -n 30 "$work/log" >&2; fail "'$*' exited $status"; }
}

rm -rf "$work" && mkdir -p "$work/calendars" "$work/status"
work="$(cd "$work" && pwd)"
suffix="$(python -c 'import secrets; print(secrets.token_hex(4))')"

collection=""
list="vdirsyncer $suffix"
collection="$(server make-collection "$list")" || fail "could not make a task list on the server"
say "made the task list '$list' ($collection) on the server"

cat >"$work/vdirsyncer.conf" <<EOF
[general]
status_path = $(quote "$work/status/")

[pair tasks]
a = "tasks_remote"
b = "tasks_local"
collections = ["from a", "from b"]
conflict_resolution = "a wins"
metadata = ["displayname", "color"]

[storage tasks_remote]
type = "caldav"
url = $(quote "$base/")
username = $(quote "$user")
password = $(quote "$password")
item_types = ["VTODO"]

[storage tasks_local]
type = "filesystem"
path = $(quote "$work/calendars/")
fileext = ".ics"
EOF
cat >"$work/todoman.py" <<EOF
path = $(quote "$work/calendars/*")
date_format = "%Y-%m-%d"
time_format = "%H:%M"
default_list = $(quote "$list")
cache_path = $(quote "$work/todoman-cache.sqlite3")
EOF
export VDIRSYNCER_CONFIG="$work/vdirsyncer.conf"
tm() { run todo --config "$work/todoman.py" "$@"; }
sync() { run vdirsyncer sync; }

# discover asks before making a local folder for each server collection.
echo "\$ vdirsyncer discover" >>"$work/log"
{ yes || true; } | timeout 120 vdirsyncer discover >>"$work/log" 2>&1 || { tail -n 30 "$work/log" >&2; fail "vdirsyncer discover"; }
[ -d "$work/calendars/$collection" ] || fail "vdirsyncer discover made no local folder for $collection: $(ls "$work/calendars")"
sync
# metasync copies each collection's displayname (and colour) into the folder, where todoman takes
# it as the list's name.
run vdirsyncer metasync
[ "$(cat "$work/calendars/$collection/displayname" 2>/dev/null)" = "$list" ] \
  || fail "vdirsyncer metasync left the displayname '$(cat "$work/calendars/$collection/displayname" 2>/dev/null)', not '$list'"
say "discovered $(ls "$work/calendars" | wc -l) collection(s), synced, metasynced: todoman's list '$list'"

# Two tasks made by todoman, one completed.
milk="Buy milk $suffix"
rent="Pay rent $suffix"
due=$(( $(date +%s) / 60 * 60 + 5 * 86400 ))
tm --porcelain new -l "$list" --due "$due" --priority 1 -c groceries "$milk" >/dev/null
# todoman 4.7 --porcelain parses the empty default of --priority as an int and fails: give one.
tm --porcelain new -l "$list" --priority 9 "$rent" >/dev/null
id=$(tm --porcelain list | python -c '
import json, sys
print(next(t["id"] for t in json.load(sys.stdin) if t["summary"] == sys.argv[1]))' "$rent") || fail "todo list does not show $rent"
tm done "$id" >/dev/null
sync
say "todo new x2, todo done, vdirsyncer sync"
server expect "$milk" --pending --due "$due" --priority 1 --category groceries
server expect "$rent" --completed
say "the server has both: '$milk' pending, due $(date -u -d "@$due" +%FT%TZ), priority 1, category groceries; '$rent' completed"

# The reverse: the server side changes, todoman sees it after a sync.
oat="Buy oat milk $suffix"
call="Call the bank $suffix"
server rename "$milk" "$oat"
server create "$call" --due "$(( due + 86400 ))"
sync
listed="$(tm --porcelain list)"
python - "$listed" "$oat" "$milk" "$call" "$(( due + 86400 ))" "$rent" <<'EOF' || fail "todo list after the server-side changes: $listed"
import json, sys
listed, oat, milk, call, due, rent = sys.argv[1:]
by = {t["summary"]: t for t in json.loads(listed)}
assert oat in by and milk not in by, "the rename did not arrive"
assert call in by and by[call]["due"] == int(due), "the new task did not arrive with its due date"
assert rent not in by, "the completed task is listed as pending"
EOF
say "server-side rename and new task: todo --porcelain list shows '$oat' and '$call'"

server complete "$oat"
sync
completed="$(tm --porcelain list --status COMPLETED)"
python - "$completed" "$oat" "$rent" <<'EOF' || fail "todo list --status COMPLETED after the server-side completion: $completed"
import json, sys
listed, oat, rent = sys.argv[1:]
by = {t["summary"]: t for t in json.loads(listed)}
assert by.get(oat, {}).get("completed") and by.get(rent, {}).get("completed")
EOF
say "server-side completion: todo list --status COMPLETED shows '$oat'"

# A deletion by todoman reaches the server.
id=$(tm --porcelain list | python -c '
import json, sys
print(next(t["id"] for t in json.load(sys.stdin) if t["summary"] == sys.argv[1]))' "$call")
tm delete --yes "$id" >/dev/null
sync
server absent "$call"
say "todo delete, sync: the server no longer has '$call'"
say "ok"
