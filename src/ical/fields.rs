//! A client's VTODO as the task fields it stands for: the one mapping CalDAV writes go through.
//! The README's CalDAV section lists each row.
//!
//! - SUMMARY ↔ title; DESCRIPTION ↔ description; CATEGORIES ↔ tags; RRULE ↔ recurrence_rule.
//! - DUE ↔ due_at and timezone: a TZID names the zone; a UTC, floating or DATE value keeps the
//!   task's zone (the owner's for a new task), a DATE being midnight there.
//! - STATUS:COMPLETED (or, without STATUS, COMPLETED or PERCENT-COMPLETE:100) ↔ completed.
//! - PRIORITY 1–4 high, 5 and 0 (unset) medium, 6–9 low.
//! - The first VALARM's TRIGGER, relative to DUE (or DTSTART) or absolute ↔ reminder_at.
//! - RELATED-TO;RELTYPE=PARENT ↔ parent_id (resolved by the caller).

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::read::{Todo, Trigger, When};
use super::task::{priority_level, remaining_rule};
use crate::domain::{
    Description, Invalid, Patch, Priority, RecurrenceRule, Tags, Task, TaskChanges, TaskFields, TimeZone,
    Title, check_instant,
};

/// Where the to-do goes, from the request rather than its text.
#[derive(Debug, Clone, Copy)]
pub struct Placement {
    pub project: Option<Uuid>,
    pub parent: Option<Uuid>,
    /// The zone a value without a TZID is read in: the task's, or the owner's for a new one.
    pub zone: TimeZone,
}

/// The task fields a VTODO stands for. `current` is the task it replaces, whose ordering and
/// series anchor it keeps (CalDAV has no words for them).
pub fn task_fields(
    todo: &Todo,
    current: Option<&Task>,
    place: Placement,
) -> Result<TaskFields<Option<TimeZone>>, Vec<Invalid>> {
    let mut errors = Vec::new();
    let errs = &mut errors;

    let zone = match &todo.due {
        Some(When::Zoned(_, tz)) => keep(errs, TimeZone::parse("DUE", tz.name())),
        _ => Some(place.zone),
    };
    let zone_tz = zone.map_or(Tz::UTC, TimeZone::tz);
    let due_at = todo.due.as_ref().and_then(|due| keep(errs, instant("DUE", due, zone_tz)));
    let start = todo.start.as_ref().and_then(|start| instant("DTSTART", start, zone_tz).ok());
    let reminder_at = todo.alarm.as_ref().and_then(|alarm| match alarm {
        Trigger::Absolute(at) => keep(errs, check_instant("reminder_at", *at)),
        Trigger::Relative { seconds, related_end } => {
            let anchor = if *related_end { due_at } else { start.or(due_at) };
            anchor.and_then(|at| keep(errs, check_instant("reminder_at", at + Duration::seconds(*seconds))))
        }
    });
    let title = keep(errs, Title::parse(todo.summary.as_deref().unwrap_or("")));
    let description = match todo.description.as_deref().filter(|d| !d.is_empty()) {
        Some(text) => keep(errs, Description::parse(text)).map(Some),
        None => Some(None),
    };
    let tags = keep(errs, Tags::parse(&todo.categories));
    let recurrence_rule = match todo.rrule.as_deref() {
        Some(rule) => keep(errs, rule_for(rule, current, matches!(todo.due, Some(When::Date(_))))).map(Some),
        None => Some(None),
    };
    let (Some(title), Some(description), Some(tags), Some(recurrence_rule), Some(zone)) =
        (title, description, tags, recurrence_rule, zone)
    else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let changes = TaskChanges {
        title: Patch::Value(title),
        description: description.map_or(Patch::Null, Patch::Value),
        completed: Patch::Value(is_completed(todo)),
        priority: Patch::Value(todo.priority.map_or(Priority::Medium, priority_level)),
        tags: Patch::Value(tags),
        due_at: due_at.map_or(Patch::Null, Patch::Value),
        timezone: Patch::Value(zone),
        reminder_at: reminder_at.map_or(Patch::Null, Patch::Value),
        recurrence_rule: recurrence_rule.map_or(Patch::Null, Patch::Value),
        recurrence_anchor: current.map_or(Patch::Absent, |t| Patch::Value(t.recurrence_anchor)),
        project_id: place.project.map_or(Patch::Null, Patch::Value),
        parent_id: place.parent.map_or(Patch::Null, Patch::Value),
        // iCalendar has no order among siblings: the write keeps the task's place, or puts it
        // after its new siblings.
        position: Patch::Absent,
    };
    changes.into_fields()
}

/// The value, or `None` with the rule it broke recorded.
fn keep<T>(errors: &mut Vec<Invalid>, result: Result<T, Invalid>) -> Option<T> {
    result.map_err(|e| errors.push(e)).ok()
}

/// STATUS decides when it is there; without it, a completion time or 100 percent do.
pub fn is_completed(todo: &Todo) -> bool {
    match todo.status.as_deref() {
        Some(status) => status == "COMPLETED",
        None => todo.completed.is_some() || todo.percent_complete == Some(100),
    }
}

/// The rule as stored. A rule equal to the one this server wrote for the task (whose COUNT
/// counts from this occurrence) is the stored rule unchanged, so a round trip does not shrink
/// the series.
fn rule_for(sent: &str, current: Option<&Task>, all_day: bool) -> Result<RecurrenceRule, Invalid> {
    if let Some(task) = current
        && let Some(stored) = task.recurrence_rule.as_deref()
        && remaining_rule(stored, task.series_index, all_day).eq_ignore_ascii_case(sent)
    {
        return RecurrenceRule::parse(stored);
    }
    RecurrenceRule::parse(sent)
}

/// Whether two rules are the same but for their COUNT: a client that advances a recurring to-do
/// itself counts the occurrence off.
pub fn same_rule_but_count(a: &str, b: &str) -> bool {
    let parts = |rule: &str| {
        let mut parts: Vec<String> = rule
            .split(';')
            .filter(|p| !p.to_ascii_uppercase().starts_with("COUNT="))
            .map(str::to_ascii_uppercase)
            .collect();
        parts.sort();
        parts
    };
    parts(a) == parts(b)
}

/// The instant a DUE or DTSTART value names, read in `zone` when it names none itself. A wall
/// time that does not exist there (a DST gap) is read an hour later; an ambiguous one, the
/// earlier time.
fn instant(field: &'static str, when: &When, zone: Tz) -> Result<DateTime<Utc>, Invalid> {
    let at = match when {
        When::Utc(at) => *at,
        When::Date(day) => local(day.and_time(chrono::NaiveTime::MIN), zone),
        When::Floating(at) => local(*at, zone),
        When::Zoned(at, tz) => local(*at, *tz),
    };
    check_instant(field, at)
}

fn local(at: NaiveDateTime, zone: Tz) -> DateTime<Utc> {
    match zone.from_local_datetime(&at) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.to_utc(),
        LocalResult::None => local(at + Duration::hours(1), zone),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todo() -> Todo {
        Todo {
            uid: "u1".into(),
            summary: Some("Pay rent".into()),
            description: None,
            due: None,
            start: None,
            status: None,
            completed: None,
            percent_complete: None,
            priority: None,
            categories: vec![],
            rrule: None,
            parent_uid: None,
            alarm: None,
            extra: vec![],
            others: vec![],
            shadowed: vec![],
            alarm_lines: vec![],
        }
    }

    fn place() -> Placement {
        Placement { project: None, parent: None, zone: TimeZone::parse("tz", "Europe/Paris").unwrap() }
    }

    #[test]
    fn priorities_map_as_rfc_5545_groups_them() {
        for (sent, level) in [
            (0, Priority::Medium),
            (1, Priority::High),
            (4, Priority::High),
            (5, Priority::Medium),
            (6, Priority::Low),
            (9, Priority::Low),
        ] {
            let fields = task_fields(&Todo { priority: Some(sent), ..todo() }, None, place()).unwrap();
            assert_eq!(fields.priority, level, "PRIORITY:{sent}");
        }
    }

    #[test]
    fn a_date_is_midnight_in_the_zone_and_a_tzid_names_the_zone() {
        let day = chrono::NaiveDate::from_ymd_opt(2027, 3, 1).unwrap();
        let fields = task_fields(&Todo { due: Some(When::Date(day)), ..todo() }, None, place()).unwrap();
        assert_eq!(fields.due_at.unwrap().to_rfc3339(), "2027-02-28T23:00:00+00:00");
        assert_eq!(fields.timezone.unwrap().name(), "Europe/Paris");
        let ny: Tz = "America/New_York".parse().unwrap();
        let at = day.and_hms_opt(9, 0, 0).unwrap();
        let fields = task_fields(&Todo { due: Some(When::Zoned(at, ny)), ..todo() }, None, place()).unwrap();
        assert_eq!(fields.due_at.unwrap().to_rfc3339(), "2027-03-01T14:00:00+00:00");
        assert_eq!(fields.timezone.unwrap().name(), "America/New_York");
    }

    #[test]
    fn a_wall_time_in_a_dst_gap_is_read_an_hour_later() {
        let at = chrono::NaiveDate::from_ymd_opt(2027, 3, 28).unwrap().and_hms_opt(2, 30, 0).unwrap();
        let fields = task_fields(&Todo { due: Some(When::Floating(at)), ..todo() }, None, place()).unwrap();
        assert_eq!(fields.due_at.unwrap().to_rfc3339(), "2027-03-28T01:30:00+00:00");
    }

    #[test]
    fn alarms_relative_to_due_or_start_or_absolute_become_the_reminder() {
        let due = When::Utc("2027-05-01T09:00:00Z".parse().unwrap());
        let relative = Todo {
            due: Some(due),
            alarm: Some(Trigger::Relative { seconds: -900, related_end: true }),
            ..todo()
        };
        let fields = task_fields(&relative, None, place()).unwrap();
        assert_eq!(fields.reminder_at.unwrap().to_rfc3339(), "2027-05-01T08:45:00+00:00");
        let absolute =
            Todo { alarm: Some(Trigger::Absolute("2027-04-30T08:00:00Z".parse().unwrap())), ..todo() };
        assert_eq!(
            task_fields(&absolute, None, place()).unwrap().reminder_at.unwrap().to_rfc3339(),
            "2027-04-30T08:00:00+00:00"
        );
    }

    #[test]
    fn status_decides_completion_before_completed_and_percent() {
        assert!(is_completed(&Todo { status: Some("COMPLETED".into()), ..todo() }));
        assert!(!is_completed(&Todo {
            status: Some("NEEDS-ACTION".into()),
            percent_complete: Some(100),
            ..todo()
        }));
        assert!(is_completed(&Todo { percent_complete: Some(100), ..todo() }));
        assert!(!is_completed(&todo()));
    }

    #[test]
    fn a_blank_summary_and_a_bad_rule_are_named() {
        let bad = Todo { summary: None, rrule: Some("FREQ=SOMETIMES".into()), ..todo() };
        let errors = task_fields(&bad, None, place()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_ref()).collect();
        assert!(fields.contains(&"title") && fields.contains(&"recurrence_rule"), "{errors:?}");
    }

    #[test]
    fn rules_compare_without_their_count() {
        assert!(same_rule_but_count("FREQ=WEEKLY;COUNT=5;BYDAY=MO", "BYDAY=MO;FREQ=WEEKLY;COUNT=4"));
        assert!(!same_rule_but_count("FREQ=WEEKLY", "FREQ=DAILY"));
    }
}
