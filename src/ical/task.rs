//! A domain [`Task`] as a VEVENT (for calendars that show events only) or a VTODO.
//!
//! - UID: `{task id}@{host}`, stable for the task's life.
//! - DTSTAMP and LAST-MODIFIED: `updated_at` (a published calendar has no METHOD, and RFC 5545
//!   then makes DTSTAMP the last modification), so the same task always writes the same bytes.
//!   SEQUENCE: `version - 1`.
//! - Times carry the task's TZID (with a VTIMEZONE from [`ZoneSpans`]); UTC tasks use `…Z`.
//!   A task due at local midnight in its zone is all-day (`VALUE=DATE`).
//! - PRIORITY: high 1, medium 5, low 9 (RFC 5545: 1–4 high, 5 medium, 6–9 low).

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;

use super::timezone::{ZoneSpans, needs_no_vtimezone};
use super::write::{Writer, date_value, duration_value, local_value, utc_value};
use crate::domain::{Priority, Task};

/// How long an event made from a due time lasts: it starts at the due time.
pub const EVENT_LENGTH: Duration = Duration::hours(1);

/// What the components need besides the task.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The host part of every UID (the service's public host).
    pub uid_host: &'a str,
}

/// What a CalDAV client said about a task beyond its fields: its UID, its parent's UID, and
/// the VTODO's content lines this service does not model, written back as they came.
#[derive(Debug, Clone, Default)]
pub struct Kept<'a> {
    pub uid: Option<&'a str>,
    pub parent_uid: Option<&'a str>,
    /// Unfolded content lines, CRLF-separated.
    pub extra: &'a str,
}

/// Marks a kept line that is a client's own form of a mapped property (see [`Kept::shadow`]); no
/// content line starts with it, so it is never written back as a line of its own.
pub const SHADOW: &str = "=";
/// After [`SHADOW`]: the client sent no PRIORITY.
pub const NO_PRIORITY: &str = "-PRIORITY";
/// After [`SHADOW`]: the reminder the client's mapped VALARM made, then that VALARM's lines.
pub const ALARM_AT: &str = "VALARM-AT";
pub const ALARM_LINE: &str = "VALARM";

impl Kept<'_> {
    fn lines(&self) -> impl Iterator<Item = &str> {
        self.extra.split("\r\n").filter(|line| !line.is_empty() && !line.starts_with(SHADOW))
    }

    /// The line a client sent for a property this service maps onto a coarser field, or
    /// `NO_PRIORITY`: written back instead of the server's form while the field still maps to
    /// the same value, so the client gets back what it sent.
    fn shadow(&self, name: &str) -> Option<&str> {
        self.extra.split("\r\n").filter_map(|line| line.strip_prefix(SHADOW)).find(|line| {
            *line == NO_PRIORITY && name == "PRIORITY"
                || (line.len() > name.len()
                    && line[..name.len()].eq_ignore_ascii_case(name)
                    && matches!(line.as_bytes()[name.len()], b':' | b';'))
        })
    }

    /// The value of a shadowed line, after its parameters.
    fn shadow_value(&self, name: &str) -> Option<(&str, &str)> {
        let line = self.shadow(name)?;
        Some((line, line.split_once(':').map_or("", |(_, value)| value.trim())))
    }

    fn has(&self, name: &str) -> bool {
        self.lines().any(|line| {
            line.len() > name.len()
                && line[..name.len()].eq_ignore_ascii_case(name)
                && matches!(line.as_bytes()[name.len()], b':' | b';')
        })
    }
}

pub fn uid(task: &Task, ctx: &Context<'_>) -> String {
    format!("{}@{}", task.id, ctx.uid_host)
}

/// RFC 5545 PRIORITY for the service's three levels.
pub fn priority_number(priority: Priority) -> u8 {
    match priority {
        Priority::High => 1,
        Priority::Medium => 5,
        Priority::Low => 9,
    }
}

/// The service's level for an RFC 5545 PRIORITY: 1–4 high, 5 and 0 (undefined) medium, 6–9 low.
pub fn priority_level(number: u8) -> Priority {
    match number {
        1..=4 => Priority::High,
        6..=9 => Priority::Low,
        _ => Priority::Medium,
    }
}

/// The task's zone; an unknown name (which validation prevents) is read as UTC.
pub fn zone(task: &Task) -> Tz {
    task.timezone.parse().unwrap_or(Tz::UTC)
}

/// Whether `at` falls exactly on midnight, local time in `tz`: such a task is due "on that day".
pub fn is_all_day(at: DateTime<Utc>, tz: Tz) -> bool {
    at.with_timezone(&tz).time() == NaiveTime::MIN
}

/// A DATE-TIME or DATE value, with the parameters it needs.
enum When {
    Date(NaiveDate),
    Local(Tz, DateTime<Utc>),
    Utc(DateTime<Utc>),
}

fn timed(at: DateTime<Utc>, tz: Tz) -> When {
    if needs_no_vtimezone(tz) { When::Utc(at) } else { When::Local(tz, at) }
}

fn write_when(w: &mut Writer, name: &str, when: &When) {
    match when {
        When::Date(day) => w.with_params(name, &[("VALUE", "DATE")], &date_value(*day)),
        When::Local(tz, at) => {
            w.with_params(name, &[("TZID", tz.name())], &local_value(at.with_timezone(tz).naive_local()))
        }
        When::Utc(at) => w.raw(name, &utc_value(*at)),
    }
}

/// Notes every instant `task` will write in its zone, for the VTIMEZONEs.
pub fn note_zones(task: &Task, spans: &mut ZoneSpans) {
    let tz = zone(task);
    // An all-day task is written as DATEs, which need no zone.
    if let Some(due) = task.due_at.filter(|due| !is_all_day(*due, tz)) {
        spans.note(tz, due);
        spans.note(tz, due + EVENT_LENGTH);
        if task.recurrence_rule.is_some() {
            // Recurring: describe the next few years of changes too.
            spans.note(tz, due + Duration::days(3 * 366));
        }
    }
}

fn write_common(w: &mut Writer, task: &Task, ctx: &Context<'_>, kept: &Kept<'_>) {
    match kept.uid {
        Some(uid) => w.raw("UID", uid),
        None => w.raw("UID", &uid(task, ctx)),
    }
    w.utc("DTSTAMP", task.updated_at);
    w.utc("CREATED", task.created_at);
    w.utc("LAST-MODIFIED", task.updated_at);
    w.raw("SEQUENCE", &(task.version - 1).max(0).to_string());
    w.text("SUMMARY", &task.title);
    if let Some(description) = task.description.as_deref().filter(|d| !d.is_empty()) {
        w.text("DESCRIPTION", description);
    }
    if !task.tags.is_empty() {
        w.text_list("CATEGORIES", &task.tags);
    }
    match kept.shadow_value("PRIORITY") {
        Some((NO_PRIORITY, _)) if task.priority == Priority::Medium => {}
        Some((line, value)) if value.parse().is_ok_and(|n| priority_level(n) == task.priority) => {
            w.kept(line)
        }
        _ => w.raw("PRIORITY", &priority_number(task.priority).to_string()),
    }
    if let Some(parent) = task.parent_id {
        // A subtask names its parent by the parent's UID (RFC 5545 RELATED-TO, RFC 9253 RELTYPE).
        match kept.parent_uid {
            Some(uid) => w.with_params("RELATED-TO", &[("RELTYPE", "PARENT")], uid),
            None => {
                w.with_params("RELATED-TO", &[("RELTYPE", "PARENT")], &format!("{parent}@{}", ctx.uid_host))
            }
        }
    }
}

/// A VALARM for `reminder_at`: relative to `related_to` (the event's start or the to-do's due
/// time) when there is one, else absolute.
fn write_alarm(w: &mut Writer, task: &Task, related: Option<(DateTime<Utc>, &str)>) {
    let Some(reminder) = task.reminder_at else { return };
    w.begin("VALARM");
    w.raw("ACTION", "DISPLAY");
    w.text("DESCRIPTION", &task.title);
    match related {
        Some((anchor, "START")) => w.raw("TRIGGER", &duration_value((reminder - anchor).num_seconds())),
        Some((anchor, related)) => w.with_params(
            "TRIGGER",
            &[("RELATED", related)],
            &duration_value((reminder - anchor).num_seconds()),
        ),
        None => w.with_params("TRIGGER", &[("VALUE", "DATE-TIME")], &utc_value(reminder)),
    }
    w.end("VALARM");
}

/// The client's own VALARM, when the task's reminder is still the one it made. False when
/// there is none or the reminder changed since: the server's VALARM is written then.
fn write_kept_alarm(w: &mut Writer, task: &Task, kept: &Kept<'_>) -> bool {
    let shadows = || kept.extra.split("\r\n").filter_map(|line| line.strip_prefix(SHADOW));
    let made = shadows()
        .find_map(|line| line.strip_prefix(ALARM_AT).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|at| at.parse::<DateTime<Utc>>().ok());
    if made.is_none() || made != task.reminder_at {
        return false;
    }
    let mut wrote = false;
    for line in
        shadows().filter_map(|line| line.strip_prefix(ALARM_LINE).and_then(|rest| rest.strip_prefix(':')))
    {
        w.kept(line);
        wrote = true;
    }
    wrote
}

/// A VEVENT for a task with a due time: one hour starting at it, or the whole day when it is
/// due at local midnight. `None` for a task without one. No RRULE: each occurrence of a series
/// is its own task, and appears when it is created.
pub fn write_vevent(w: &mut Writer, task: &Task, ctx: &Context<'_>) -> bool {
    let Some(due) = task.due_at else { return false };
    let tz = zone(task);
    w.begin("VEVENT");
    write_common(w, task, ctx, &Kept::default());
    if is_all_day(due, tz) {
        let day = due.with_timezone(&tz).date_naive();
        write_when(w, "DTSTART", &When::Date(day));
        write_when(w, "DTEND", &When::Date(day.succ_opt().unwrap_or(day)));
    } else {
        write_when(w, "DTSTART", &timed(due, tz));
        write_when(w, "DTEND", &timed(due + EVENT_LENGTH, tz));
    }
    // A task is not time spent: it does not make its owner busy.
    w.raw("TRANSP", "TRANSPARENT");
    write_alarm(w, task, Some((due, "START")));
    w.end("VEVENT");
    true
}

/// A VTODO: STATUS, DUE when set, RRULE (with DTSTART at the due time, as RFC 5545 wants a
/// DTSTART for a recurrence), COMPLETED when done.
pub fn write_vtodo(w: &mut Writer, task: &Task, ctx: &Context<'_>) {
    write_vtodo_keeping(w, task, ctx, &Kept::default());
}

/// A VTODO with what a CalDAV client said about it: its UID and parent's UID, and its other
/// lines after the ones written here. A DTSTART the client sent is kept in place of the one a
/// recurring task would get.
pub fn write_vtodo_keeping(w: &mut Writer, task: &Task, ctx: &Context<'_>, kept: &Kept<'_>) {
    let tz = zone(task);
    w.begin("VTODO");
    write_common(w, task, ctx, kept);
    if task.completed {
        w.raw("STATUS", "COMPLETED");
        w.raw("PERCENT-COMPLETE", "100");
        if let Some(at) = task.completed_at {
            w.utc("COMPLETED", at);
        }
    } else {
        // An open status the client chose (IN-PROCESS, CANCELLED) and its progress stay.
        match kept.shadow_value("STATUS") {
            Some((line, value)) if !value.eq_ignore_ascii_case("COMPLETED") => w.kept(line),
            _ => w.raw("STATUS", "NEEDS-ACTION"),
        }
        if let Some((line, value)) = kept.shadow_value("PERCENT-COMPLETE")
            && value.parse::<u8>().is_ok_and(|n| n < 100)
        {
            w.kept(line);
        }
    }
    if let Some(due) = task.due_at {
        let when = if is_all_day(due, tz) {
            When::Date(due.with_timezone(&tz).date_naive())
        } else {
            timed(due, tz)
        };
        if let Some(rule) = task.recurrence_rule.as_deref() {
            if !kept.has("DTSTART") {
                write_when(w, "DTSTART", &when);
            }
            let all_day = matches!(when, When::Date(_));
            w.raw("RRULE", &remaining_rule(rule, task.series_index, all_day));
        }
        write_when(w, "DUE", &when);
    }
    if !write_kept_alarm(w, task, kept) {
        write_alarm(w, task, task.due_at.map(|due| (due, "END")));
    }
    for line in kept.lines() {
        w.kept(line);
    }
    w.end("VTODO");
}

/// The rule from this occurrence on: a COUNT counts from the series' first occurrence, so the
/// occurrences already made are taken off it. An UNTIL takes the form RFC 5545 asks for beside
/// the DTSTART written: a DATE beside an all-day one, a UTC DATE-TIME (the day's last second,
/// for a bare date) beside a timed one.
pub fn remaining_rule(rule: &str, series_index: Option<i32>, all_day: bool) -> String {
    let done = i64::from(series_index.unwrap_or(1).max(1) - 1);
    rule.split(';')
        .map(|part| {
            if let Some(count) = part.strip_prefix("COUNT=").and_then(|n| n.parse::<i64>().ok()) {
                return format!("COUNT={}", (count - done).max(1));
            }
            match part.strip_prefix("UNTIL=") {
                Some(until) if all_day && until.len() > 8 && until.is_char_boundary(8) => {
                    format!("UNTIL={}", &until[..8])
                }
                Some(until) if !all_day && until.len() == 8 => format!("UNTIL={until}T235959Z"),
                _ => part.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use uuid::Uuid;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    pub fn task(title: &str, due: Option<&str>, tz: &str) -> Task {
        Task {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            title: title.into(),
            description: None,
            completed: false,
            completed_at: None,
            priority: Priority::High,
            tags: vec!["work".into(), "a,b".into()],
            due_at: due.map(utc),
            timezone: tz.into(),
            reminder_at: None,
            recurrence_rule: None,
            recurrence_anchor: Default::default(),
            is_recurring: false,
            series_id: None,
            next_occurrence_at: None,
            series_paused: None,
            series_start: None,
            occurrence_at: None,
            series_index: None,
            next_occurrence_queued: false,
            project_id: None,
            parent_id: None,
            position: 0,
            subtask_count: 0,
            completed_subtask_count: 0,
            trashed_with: None,
            deleted_at: None,
            created_at: utc("2027-01-01T00:00:00Z"),
            updated_at: utc("2027-01-02T00:00:00Z"),
            version: 3,
        }
    }

    fn ctx() -> Context<'static> {
        Context { uid_host: "todo.example.com" }
    }

    #[test]
    fn priority_maps_both_ways_by_rfc_5545_ranges() {
        assert_eq!(priority_number(Priority::High), 1);
        assert_eq!(priority_number(Priority::Medium), 5);
        assert_eq!(priority_number(Priority::Low), 9);
        for n in 1..=4 {
            assert_eq!(priority_level(n), Priority::High);
        }
        assert_eq!(priority_level(5), Priority::Medium);
        assert_eq!(priority_level(0), Priority::Medium);
        for n in 6..=9 {
            assert_eq!(priority_level(n), Priority::Low);
        }
        for p in [Priority::High, Priority::Medium, Priority::Low] {
            assert_eq!(priority_level(priority_number(p)), p);
        }
    }

    #[test]
    fn all_day_is_local_midnight_across_dst() {
        let paris = Tz::Europe__Paris;
        // Winter: midnight is 23:00 UTC the day before; summer: 22:00 UTC.
        assert!(is_all_day(utc("2027-01-14T23:00:00Z"), paris));
        assert!(is_all_day(utc("2027-07-14T22:00:00Z"), paris));
        assert!(!is_all_day(utc("2027-07-14T23:00:00Z"), paris));
        // The day after the spring change, and the change day itself.
        assert!(is_all_day(utc("2027-03-27T23:00:00Z"), paris));
        assert!(is_all_day(utc("2027-03-28T22:00:00Z"), paris));
        // America/Sao_Paulo once skipped midnight (DST began at 00:00): 01:00 is not all-day.
        assert!(!is_all_day(utc("2018-11-04T03:00:00Z"), Tz::America__Sao_Paulo));
        assert!(is_all_day(utc("2027-01-15T00:00:00Z"), Tz::UTC));
    }

    #[test]
    fn an_event_lasts_an_hour_from_its_due_time_in_the_task_zone() {
        let mut w = Writer::new();
        let t = task("Call; \"Bob\", now\nplease", Some("2027-07-14T07:30:00Z"), "Europe/Paris");
        assert!(write_vevent(&mut w, &t, &ctx()));
        let out = w.finish();
        assert!(out.contains("UID:00000000-0000-0000-0000-000000000000@todo.example.com\r\n"));
        assert!(out.contains("DTSTART;TZID=Europe/Paris:20270714T093000\r\n"), "{out}");
        assert!(out.contains("DTEND;TZID=Europe/Paris:20270714T103000\r\n"));
        assert!(out.contains("SUMMARY:Call\\; \"Bob\"\\, now\\nplease\r\n"));
        assert!(out.contains("CATEGORIES:work,a\\,b\r\n"));
        assert!(out.contains("SEQUENCE:2\r\nSUMMARY") || out.contains("SEQUENCE:2\r\n"));
        assert!(out.contains("PRIORITY:1\r\n"));
        assert!(out.contains("DTSTAMP:20270102T000000Z\r\n"));
    }

    #[test]
    fn an_all_day_event_spans_its_local_date() {
        let mut w = Writer::new();
        write_vevent(&mut w, &task("Rent", Some("2027-07-31T22:00:00Z"), "Europe/Paris"), &ctx());
        let out = w.finish();
        assert!(out.contains("DTSTART;VALUE=DATE:20270801\r\nDTEND;VALUE=DATE:20270802\r\n"), "{out}");
    }

    #[test]
    fn a_task_without_a_due_time_is_no_event() {
        let mut w = Writer::new();
        assert!(!write_vevent(&mut w, &task("Someday", None, "UTC"), &ctx()));
        assert!(w.is_empty());
    }

    #[test]
    fn a_todo_carries_status_due_rule_and_a_relative_alarm() {
        let mut t = task("Standup", Some("2027-03-01T14:00:00Z"), "America/New_York");
        t.recurrence_rule = Some("FREQ=WEEKLY;BYDAY=MO;COUNT=10".into());
        t.series_index = Some(3);
        t.reminder_at = Some(utc("2027-03-01T13:45:00Z"));
        let mut w = Writer::new();
        write_vtodo(&mut w, &t, &ctx());
        let out = w.finish();
        assert!(out.contains("STATUS:NEEDS-ACTION\r\n"));
        assert!(out.contains("DTSTART;TZID=America/New_York:20270301T090000\r\n"), "{out}");
        assert!(out.contains("DUE;TZID=America/New_York:20270301T090000\r\n"));
        assert!(out.contains("RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=8\r\n"));
        assert!(out.contains("TRIGGER;RELATED=END:-PT15M\r\n"));
    }

    #[test]
    fn a_rule_keeps_the_count_left_and_an_until_in_the_form_its_dtstart_needs() {
        assert_eq!(remaining_rule("FREQ=DAILY;COUNT=5", Some(1), false), "FREQ=DAILY;COUNT=5");
        assert_eq!(remaining_rule("FREQ=DAILY;COUNT=5", Some(9), false), "FREQ=DAILY;COUNT=1");
        assert_eq!(
            remaining_rule("FREQ=DAILY;UNTIL=20270301T100000Z", None, true),
            "FREQ=DAILY;UNTIL=20270301"
        );
        assert_eq!(
            remaining_rule("FREQ=DAILY;UNTIL=20270301", None, false),
            "FREQ=DAILY;UNTIL=20270301T235959Z"
        );
        assert_eq!(
            remaining_rule("FREQ=DAILY;UNTIL=20270301T100000Z", None, false),
            "FREQ=DAILY;UNTIL=20270301T100000Z"
        );
    }

    #[test]
    fn a_todo_without_due_gets_an_absolute_alarm_and_utc_tasks_use_z_times() {
        let mut t = task("Read", None, "UTC");
        t.reminder_at = Some(utc("2027-03-01T13:45:00Z"));
        let mut w = Writer::new();
        write_vtodo(&mut w, &t, &ctx());
        let out = w.finish();
        assert!(!out.contains("DUE"));
        assert!(out.contains("TRIGGER;VALUE=DATE-TIME:20270301T134500Z\r\n"));
        let mut w = Writer::new();
        write_vtodo(&mut w, &task("Z", Some("2027-03-01T13:45:00Z"), "UTC"), &ctx());
        assert!(w.finish().contains("DUE:20270301T134500Z\r\n"));
    }

    #[test]
    fn a_subtask_names_its_parent_by_uid_and_a_top_level_task_names_none() {
        let mut t = task("Step", None, "UTC");
        let mut w = Writer::new();
        write_vtodo(&mut w, &t, &ctx());
        assert!(!w.finish().contains("RELATED-TO"));
        t.parent_id = Some(Uuid::from_u128(7));
        let mut w = Writer::new();
        write_vtodo(&mut w, &t, &ctx());
        // Unfolded: the line is longer than 75 octets.
        let out = w.finish().replace("\r\n ", "");
        assert!(
            out.contains(
                "RELATED-TO;RELTYPE=PARENT:00000000-0000-0000-0000-000000000007@todo.example.com\r\n"
            ),
            "{out}"
        );
    }
}
