//! Stepping a recurring series: the due time and place of the occurrence after this one.
//!
//! The rule is expanded in the task's own time zone, so a 09:00 task stays at 09:00 local time
//! across daylight-saving changes. Each step starts from the occurrence it follows (its due time,
//! or its completion for `recurrence_anchor=completion`), so editing one occurrence's due time
//! moves the rest of the series with it. `COUNT` is therefore counted with the stored
//! `series_index` rather than by the expansion, which would restart at every step.

use chrono::{DateTime, SubsecRound, Utc};
use rrule::{RRule, RRuleSet, Unvalidated};

use super::{RecurrenceAnchor, TimeZone};

/// More candidate instants than any sane rule needs between one occurrence and the next
/// (an hourly rule completed eleven years late); past it the step gives up rather than spin.
pub const MAX_STEPS: usize = 100_000;

/// The budget for showing `next_occurrence_at` on a read, which every listed task pays: a
/// series completed so late that its step needs more than this shows `null` until the worker
/// has made the occurrence.
pub const READ_STEPS: usize = 10_000;

/// The occurrence a series continues with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub due_at: DateTime<Utc>,
    /// 1 for the series' first occurrence.
    pub series_index: i32,
}

/// One occurrence of a series, as the step needs to see it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// The stored RRULE body, such as `FREQ=WEEKLY;BYDAY=MO`.
    pub rule: &'a str,
    pub timezone: TimeZone,
    pub anchor: RecurrenceAnchor,
    pub due_at: DateTime<Utc>,
    pub series_index: i32,
    /// When this occurrence was completed; `None` while it is open.
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StepError {
    #[error("the stored recurrence rule no longer parses: {0}")]
    BadRule(String),
    #[error("no occurrence within the step budget of the reference time")]
    TooFar,
}

/// The next occurrence, or `None` when COUNT or UNTIL has ended the series.
///
/// - `due` anchor: steps from the due time and skips occurrences already past when the task
///   was completed, landing on the first one after it. Skipped occurrences still count
///   towards COUNT, because COUNT counts from the series' first occurrence.
/// - `completion` anchor: steps from the moment of completion.
///
/// An open occurrence is stepped as if completed on time, which is what `next_occurrence_at`
/// shows before completion. The result depends only on its inputs, never on the clock, so the
/// web process and the worker agree.
pub fn next_occurrence(current: Current<'_>) -> Result<Option<Occurrence>, StepError> {
    next_occurrence_within(current, MAX_STEPS)
}

/// [`next_occurrence`] with a smaller budget of candidate instants.
pub fn next_occurrence_within(
    current: Current<'_>,
    max_steps: usize,
) -> Result<Option<Occurrence>, StepError> {
    let (body, count) = without_count(current.rule)?;
    let (start, reference) = match current.anchor {
        RecurrenceAnchor::Due => {
            let completed = current.completed_at.unwrap_or(current.due_at);
            (current.due_at, completed.max(current.due_at))
        }
        RecurrenceAnchor::Completion => {
            // Whole seconds: the queue and clients see whole seconds, and so does iCalendar.
            let start = current.completed_at.map_or(current.due_at, |c| c.trunc_subsecs(0));
            (start, start)
        }
    };
    let tz = rrule::Tz::Tz(current.timezone.tz());
    let local_start = start.with_timezone(&tz);
    // Completed after UNTIL (possible with the completion anchor): the series is over, which
    // the rule would otherwise report as an invalid start.
    if body.get_until().is_some_and(|until| until.with_timezone(&Utc) < start) {
        return Ok(None);
    }
    let rule = body.validate(local_start).map_err(|e| StepError::BadRule(e.to_string()))?;
    let set = RRuleSet::new(local_start).rrule(rule).limit();

    let mut skipped: i32 = 0;
    for (steps, instant) in set.into_iter().enumerate() {
        if steps >= max_steps {
            return Err(StepError::TooFar);
        }
        let instant = instant.with_timezone(&Utc);
        if instant <= start {
            continue;
        }
        skipped = skipped.saturating_add(1);
        if instant > reference {
            let series_index = current.series_index.saturating_add(skipped);
            let ended = count.is_some_and(|count| i64::from(series_index) > i64::from(count));
            return Ok((!ended).then_some(Occurrence { due_at: instant, series_index }));
        }
    }
    // The expansion ran out: UNTIL has passed.
    Ok(None)
}

/// The rule without its COUNT part, and that COUNT.
fn without_count(rule: &str) -> Result<(RRule<Unvalidated>, Option<u32>), StepError> {
    let parsed: RRule<Unvalidated> =
        rule.parse().map_err(|e: rrule::RRuleError| StepError::BadRule(e.to_string()))?;
    let count = parsed.get_count();
    if count.is_none() {
        return Ok((parsed, None));
    }
    let body: Vec<&str> =
        rule.split(';').filter(|part| !part.trim().to_ascii_uppercase().starts_with("COUNT=")).collect();
    let body = body.join(";").parse().map_err(|e: rrule::RRuleError| StepError::BadRule(e.to_string()))?;
    Ok((body, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn step(rule: &str, zone: &str, due: &str, completed: Option<&str>) -> Option<Occurrence> {
        step_with(rule, zone, RecurrenceAnchor::Due, due, 1, completed)
    }

    fn step_with(
        rule: &str,
        zone: &str,
        anchor: RecurrenceAnchor,
        due: &str,
        series_index: i32,
        completed: Option<&str>,
    ) -> Option<Occurrence> {
        next_occurrence(Current {
            rule,
            timezone: TimeZone::parse("timezone", zone).unwrap(),
            anchor,
            due_at: utc(due),
            series_index,
            completed_at: completed.map(utc),
        })
        .unwrap()
    }

    fn due(rule: &str, zone: &str, due: &str, completed: Option<&str>) -> Option<DateTime<Utc>> {
        step(rule, zone, due, completed).map(|o| o.due_at)
    }

    // Expected instants below are written out by hand from the calendar and the tz rules:
    // Berlin is UTC+1 in winter and UTC+2 from the last Sunday of March to the last of October.

    #[test]
    fn a_daily_task_keeps_its_local_time_when_summer_time_starts() {
        // 09:00 Berlin on Saturday 28 March 2026 (UTC+1); summer time starts on the 29th.
        assert_eq!(
            due("FREQ=DAILY", "Europe/Berlin", "2026-03-28T08:00:00Z", None),
            Some(utc("2026-03-29T07:00:00Z"))
        );
    }

    #[test]
    fn a_daily_task_keeps_its_local_time_when_summer_time_ends() {
        // 09:00 Berlin on Saturday 24 October 2026 (UTC+2); winter time starts on the 25th.
        assert_eq!(
            due("FREQ=DAILY", "Europe/Berlin", "2026-10-24T07:00:00Z", None),
            Some(utc("2026-10-25T08:00:00Z"))
        );
    }

    #[test]
    fn a_monthly_rule_on_the_31st_skips_months_without_one() {
        // 31 January 2026 → February, April have no 31st; March has one.
        assert_eq!(
            due("FREQ=MONTHLY", "UTC", "2026-01-31T10:00:00Z", None),
            Some(utc("2026-03-31T10:00:00Z"))
        );
        assert_eq!(
            due("FREQ=MONTHLY", "UTC", "2026-03-31T10:00:00Z", None),
            Some(utc("2026-05-31T10:00:00Z"))
        );
    }

    #[test]
    fn weekday_lists_step_to_the_next_listed_day() {
        // Monday 7 December 2026 → Wednesday 9 → Friday 11 → Monday 14.
        let rule = "FREQ=WEEKLY;BYDAY=MO,WE,FR";
        assert_eq!(due(rule, "UTC", "2026-12-07T09:00:00Z", None), Some(utc("2026-12-09T09:00:00Z")));
        assert_eq!(due(rule, "UTC", "2026-12-09T09:00:00Z", None), Some(utc("2026-12-11T09:00:00Z")));
        assert_eq!(due(rule, "UTC", "2026-12-11T09:00:00Z", None), Some(utc("2026-12-14T09:00:00Z")));
    }

    #[test]
    fn an_interval_skips_periods() {
        assert_eq!(
            due("FREQ=WEEKLY;INTERVAL=2", "UTC", "2026-12-07T09:00:00Z", None),
            Some(utc("2026-12-21T09:00:00Z"))
        );
    }

    #[test]
    fn count_ends_the_series_counting_from_its_first_occurrence() {
        let at = |index| {
            step_with("FREQ=DAILY;COUNT=3", "UTC", RecurrenceAnchor::Due, "2026-12-01T09:00:00Z", index, None)
        };
        assert_eq!(at(1), Some(Occurrence { due_at: utc("2026-12-02T09:00:00Z"), series_index: 2 }));
        assert_eq!(at(2).map(|o| o.series_index), Some(3));
        assert_eq!(at(3), None, "the third occurrence is the last");
    }

    #[test]
    fn until_ends_the_series() {
        let rule = "FREQ=DAILY;UNTIL=20261203T090000Z";
        assert_eq!(due(rule, "UTC", "2026-12-02T09:00:00Z", None), Some(utc("2026-12-03T09:00:00Z")));
        assert_eq!(due(rule, "UTC", "2026-12-03T09:00:00Z", None), None);
    }

    #[test]
    fn the_due_anchor_skips_occurrences_already_past_at_completion() {
        // Due Monday 7 December, completed Thursday 10 December at noon: the next Monday.
        let next = step("FREQ=WEEKLY", "UTC", "2026-12-07T09:00:00Z", Some("2026-12-10T12:00:00Z"));
        assert_eq!(next, Some(Occurrence { due_at: utc("2026-12-14T09:00:00Z"), series_index: 2 }));
        // Completed three weeks late: three occurrences were skipped and still count.
        let next = step("FREQ=WEEKLY", "UTC", "2026-12-07T09:00:00Z", Some("2026-12-29T12:00:00Z"));
        assert_eq!(next, Some(Occurrence { due_at: utc("2027-01-04T09:00:00Z"), series_index: 5 }));
        // Early completion still steps from the due time.
        assert_eq!(
            due("FREQ=WEEKLY", "UTC", "2026-12-07T09:00:00Z", Some("2026-12-01T08:00:00Z")),
            Some(utc("2026-12-14T09:00:00Z"))
        );
    }

    #[test]
    fn a_due_time_far_in_the_past_lands_on_the_first_future_occurrence() {
        assert_eq!(
            due("FREQ=DAILY", "UTC", "2016-01-01T09:00:00Z", Some("2026-12-10T12:00:00Z")),
            Some(utc("2026-12-11T09:00:00Z"))
        );
        let skipped_count =
            step("FREQ=DAILY;COUNT=30", "UTC", "2016-01-01T09:00:00Z", Some("2026-12-10T12:00:00Z"));
        assert_eq!(skipped_count, None, "a finished count stays finished however late");
    }

    #[test]
    fn the_completion_anchor_steps_from_the_moment_of_completion() {
        let next = step_with(
            "FREQ=DAILY;INTERVAL=3",
            "Europe/Berlin",
            RecurrenceAnchor::Completion,
            "2026-12-07T08:00:00Z",
            1,
            Some("2026-12-10T15:30:12.345Z"),
        );
        assert_eq!(next, Some(Occurrence { due_at: utc("2026-12-13T15:30:12Z"), series_index: 2 }));
    }

    #[test]
    fn until_is_read_in_utc_whatever_the_zone() {
        // 09:00 New York is 14:00 UTC in winter; UNTIL at 14:00 UTC on the 3rd keeps the 3rd.
        let rule = "FREQ=DAILY;UNTIL=20261203T140000Z";
        assert_eq!(
            due(rule, "America/New_York", "2026-12-02T14:00:00Z", None),
            Some(utc("2026-12-03T14:00:00Z"))
        );
        assert_eq!(due(rule, "America/New_York", "2026-12-03T14:00:00Z", None), None);
    }

    #[test]
    fn completing_after_until_with_the_completion_anchor_ends_the_series() {
        let next = step_with(
            "FREQ=DAILY;UNTIL=20261203T090000Z",
            "UTC",
            RecurrenceAnchor::Completion,
            "2026-12-01T09:00:00Z",
            1,
            Some("2026-12-10T09:00:00Z"),
        );
        assert_eq!(next, None);
    }

    #[test]
    fn a_step_past_its_budget_gives_up_instead_of_spinning() {
        let current = Current {
            rule: "FREQ=HOURLY",
            timezone: TimeZone::UTC,
            anchor: RecurrenceAnchor::Due,
            due_at: utc("2016-01-01T09:00:00Z"),
            series_index: 1,
            completed_at: Some(utc("2026-12-10T12:00:00Z")),
        };
        assert_eq!(next_occurrence_within(current, READ_STEPS), Err(StepError::TooFar));
        assert_eq!(next_occurrence(current).unwrap().map(|o| o.due_at), Some(utc("2026-12-10T13:00:00Z")));
    }

    #[test]
    fn a_broken_rule_is_an_error_not_a_panic() {
        let result = next_occurrence(Current {
            rule: "FREQ=NEVER",
            timezone: TimeZone::UTC,
            anchor: RecurrenceAnchor::Due,
            due_at: utc("2026-12-07T08:00:00Z"),
            series_index: 1,
            completed_at: None,
        });
        assert!(matches!(result, Err(StepError::BadRule(_))));
    }
}
