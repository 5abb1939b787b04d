//! Stepping a recurring series: the due time and place of the occurrence after this one.
//!
//! The rule is expanded in the task's own time zone, from the series' start (its DTSTART), in
//! local wall time. A 09:00 task therefore stays at 09:00 across daylight-saving changes, and an
//! occurrence that falls into a gap (02:30 on the night clocks spring forward) moves alone: the
//! next one is back at 02:30. Editing an occurrence's due time restarts the series there, so the
//! rest of the series moves with it.
//!
//! The work is bounded whatever the rule and however late the completion:
//! - the parts of the rule RFC 5545 takes from DTSTART (the time of day, the weekday, the day of
//!   the month) are written into the rule, so the expansion can begin at any period of the
//!   series' grid instead of at its first occurrence: it begins at the last aligned period
//!   before the point searched from, which makes a step cost the gap to the next occurrence,
//!   not the age of the series;
//! - the rrule crate gives up after 100,000 empty periods in a row (a sparse rule such as
//!   `FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29`); the search resumes past them a bounded number of
//!   times, and in all it may cross [`MAX_PERIODS`] periods and yield [`MAX_OCCURRENCES`]
//!   candidates before the step answers [`StepError::TooFar`].
//!
//! `COUNT` is counted with the stored `series_index` rather than by the expansion, which
//! restarts at every step.

use chrono::{
    DateTime, Datelike, Days, Months, NaiveDate, NaiveDateTime, SubsecRound, TimeDelta, Timelike, Utc,
};
use rrule::{Frequency, NWeekday, RRule, RRuleSet, Unvalidated, Weekday};

use super::{RecurrenceAnchor, TimeZone};

/// Periods of the rule's frequency (hours, days, weeks, months or years, counted in `INTERVAL`
/// steps) one step may cross. About 5–75 ns each, so a step costs at most tens of milliseconds.
pub const MAX_PERIODS: i64 = 400_000;

/// Candidate instants one step may look at (an hourly rule completed eleven years late, with
/// `COUNT`, so the skipped ones must be counted).
pub const MAX_OCCURRENCES: usize = 100_000;

/// Empty periods after which the rrule crate stops looking for the next instant. The search
/// resumes this far (less a margin) past the last instant it saw.
const CRATE_LOOP_LIMIT: i64 = 100_000;
const RESUME_AFTER: i64 = CRATE_LOOP_LIMIT - 1_000;

/// The occurrence a series continues with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    pub due_at: DateTime<Utc>,
    /// The occurrence's place in its series, from 1. Exact whenever the rule has `COUNT`, the
    /// one case where it matters; without `COUNT` a late completion may skip counting.
    pub series_index: i32,
}

/// One occurrence of a series, as the step needs to see it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// The stored RRULE body, such as `FREQ=WEEKLY;BYDAY=MO`.
    pub rule: &'a str,
    pub timezone: TimeZone,
    pub anchor: RecurrenceAnchor,
    /// The series' DTSTART. Its local wall time is the one every occurrence is meant to have.
    pub series_start: DateTime<Utc>,
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

/// The last instant a task may carry: later ones have five-digit years, which RFC 3339 cannot
/// write. A series that would step past it has ended.
pub fn latest_instant() -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(
        NaiveDate::from_ymd_opt(9999, 12, 31).and_then(|d| d.and_hms_opt(23, 59, 59)).unwrap_or_default(),
        Utc,
    )
}

/// The next occurrence, or `None` when COUNT or UNTIL has ended the series.
///
/// - `due` anchor: steps from the due time and skips occurrences already past when the task
///   was completed, landing on the first one after it. Skipped occurrences still count
///   towards COUNT, because COUNT counts from the series' first occurrence.
/// - `completion` anchor: steps from the moment of completion, which is then the series' start.
///
/// An open occurrence is stepped as if completed on time, which is what `next_occurrence_at`
/// shows before completion. The result depends only on its inputs, never on the clock, so the
/// web process and the worker agree.
pub fn next_occurrence(current: Current<'_>) -> Result<Option<Occurrence>, StepError> {
    let (body, count) = without_count(current.rule)?;
    let tz = rrule::Tz::Tz(current.timezone.tz());
    let (origin, start, reference) = match current.anchor {
        RecurrenceAnchor::Due => {
            let completed = current.completed_at.unwrap_or(current.due_at);
            let origin =
                if current.series_start <= current.due_at { current.series_start } else { current.due_at };
            (origin, current.due_at, completed.max(current.due_at))
        }
        RecurrenceAnchor::Completion => {
            // Whole seconds: the queue and clients see whole seconds, and so does iCalendar.
            let start = current.completed_at.map_or(current.due_at, |c| c.trunc_subsecs(0));
            (start, start, start)
        }
    };
    let origin = origin.with_timezone(&tz);
    let rule = explicit(body, origin.naive_local());
    let grid = Grid::new(&rule, origin)?;
    let until = rule.get_until().map(|until| until.naive_utc());
    let local = |at: DateTime<Utc>| at.with_timezone(&tz).naive_local();

    // Without COUNT nothing before the reference needs counting, so the search begins there.
    let from = if count.is_some() { start } else { reference };
    let first = grid.aligned(grid.periods_to(local(from)));
    let mut period = first;
    let mut seen = 0_usize;
    let mut skipped: i32 = 0;
    loop {
        let Some(window) = grid.window_start(period, tz) else { return Ok(None) };
        // Past UNTIL before the window even opens (a completion after UNTIL, with the completion
        // anchor): the series is over, which the rule would report as an invalid start.
        if until.is_some_and(|until| until < window.naive_utc()) {
            return Ok(None);
        }
        let rule = rule.clone().validate(window).map_err(|e| StepError::BadRule(e.to_string()))?;
        let mut last = period;
        let set = RRuleSet::new(window).rrule(rule).limit();
        for instant in &set {
            seen += 1;
            last = grid.periods_to(instant.naive_local());
            if seen > MAX_OCCURRENCES || grid.passes(first, last) > MAX_PERIODS {
                return Err(StepError::TooFar);
            }
            let instant = instant.with_timezone(&Utc);
            if instant > latest_instant() {
                return Ok(None);
            }
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
        // The expansion stopped: UNTIL passed, the calendar ran out, or the crate gave up after
        // a long run of empty periods. Resume short of where it gave up; if UNTIL lies before
        // that, the expansion saw everything up to UNTIL and the series is over.
        period = grid.aligned(last.saturating_add(RESUME_AFTER.saturating_mul(grid.interval)));
        if grid.passes(first, period) > MAX_PERIODS {
            return Err(StepError::TooFar);
        }
        match grid.naive_start(period) {
            Some(resume) if until.is_none_or(|until| resume <= until) && resume.year() <= 9999 => {}
            _ => return Ok(None),
        }
    }
}

/// The rule with the parts RFC 5545 takes from DTSTART written out, taken from the series'
/// nominal start: the expansion may then begin at any period of the series and still yields
/// the same instants.
fn explicit(rule: RRule<Unvalidated>, origin: NaiveDateTime) -> RRule<Unvalidated> {
    let freq = rule.get_freq();
    let names_days = !(rule.get_by_week_no().is_empty()
        && rule.get_by_year_day().is_empty()
        && rule.get_by_month_day().is_empty()
        && rule.get_by_weekday().is_empty());
    let day = i8::try_from(origin.day()).unwrap_or(1);
    let mut rule = match freq {
        _ if names_days => rule,
        Frequency::Yearly if rule.get_by_month().is_empty() => {
            let month = u8::try_from(origin.month()).ok().and_then(|m| chrono::Month::try_from(m).ok());
            rule.by_month(&month.into_iter().collect::<Vec<_>>()).by_month_day(vec![day])
        }
        Frequency::Yearly | Frequency::Monthly => rule.by_month_day(vec![day]),
        Frequency::Weekly => rule.by_weekday(vec![NWeekday::Every(origin.weekday())]),
        _ => rule,
    };
    let part = |value: u32| u8::try_from(value).unwrap_or(0);
    if rule.get_by_hour().is_empty() && freq < Frequency::Hourly {
        rule = rule.by_hour(vec![part(origin.hour())]);
    }
    if rule.get_by_minute().is_empty() && freq < Frequency::Minutely {
        rule = rule.by_minute(vec![part(origin.minute())]);
    }
    if rule.get_by_second().is_empty() && freq < Frequency::Secondly {
        rule = rule.by_second(vec![part(origin.second())]);
    }
    rule
}

/// The series' periods (hours, days, weeks, months or years) in local wall time, numbered from
/// the one its start falls in. The rule's INTERVAL picks every n-th of them.
struct Grid {
    freq: Frequency,
    interval: i64,
    week_start: Weekday,
    origin: DateTime<rrule::Tz>,
}

impl Grid {
    fn new(rule: &RRule<Unvalidated>, origin: DateTime<rrule::Tz>) -> Result<Self, StepError> {
        if matches!(rule.get_freq(), Frequency::Minutely | Frequency::Secondly) {
            return Err(StepError::BadRule("FREQ must be HOURLY or slower".into()));
        }
        Ok(Self {
            freq: rule.get_freq(),
            interval: i64::from(rule.get_interval().max(1)),
            week_start: rule.get_week_start(),
            origin,
        })
    }

    /// Whole periods from the origin's period to the one `at` falls in.
    fn periods_to(&self, at: NaiveDateTime) -> i64 {
        let origin = self.origin.naive_local();
        match self.freq {
            Frequency::Daily => (at.date() - origin.date()).num_days(),
            Frequency::Weekly => (self.week_of(at.date()) - self.week_of(origin.date())).num_days() / 7,
            Frequency::Monthly => months(at.date()) - months(origin.date()),
            Frequency::Yearly => i64::from(at.year() - origin.year()),
            _ => (hour_of(at) - hour_of(origin)).num_hours(),
        }
    }

    /// Steps of INTERVAL periods from `from` to `to`: the rrule crate's passes between them.
    fn passes(&self, from: i64, to: i64) -> i64 {
        to.saturating_sub(from) / self.interval
    }

    /// The last period of the series at or before `periods`, never before the origin's.
    fn aligned(&self, periods: i64) -> i64 {
        periods.max(0).div_euclid(self.interval).saturating_mul(self.interval)
    }

    /// The first local moment of a period; `None` past the calendar.
    fn naive_start(&self, periods: i64) -> Option<NaiveDateTime> {
        let origin = self.origin.naive_local();
        let midnight = |date: NaiveDate| date.and_hms_opt(0, 0, 0);
        let days = |n: i64| u64::try_from(n).ok().map(Days::new);
        match self.freq {
            Frequency::Daily => midnight(origin.date().checked_add_days(days(periods)?)?),
            Frequency::Weekly => {
                midnight(self.week_of(origin.date()).checked_add_days(days(periods.checked_mul(7)?)?)?)
            }
            Frequency::Monthly => midnight(
                origin.date().with_day(1)?.checked_add_months(Months::new(u32::try_from(periods).ok()?))?,
            ),
            Frequency::Yearly => midnight(NaiveDate::from_ymd_opt(
                origin.year().checked_add(i32::try_from(periods).ok()?)?,
                1,
                1,
            )?),
            _ => hour_of(origin).checked_add_signed(TimeDelta::try_hours(periods)?),
        }
    }

    /// Where the expansion of period `periods` begins: its first local moment, or, when the
    /// clocks skip that moment, an earlier period of the series (the series' start at worst).
    fn window_start(&self, mut periods: i64, tz: rrule::Tz) -> Option<DateTime<rrule::Tz>> {
        use chrono::TimeZone as _;
        while periods > 0 {
            if let Some(at) = tz.from_local_datetime(&self.naive_start(periods)?).earliest() {
                return Some(at);
            }
            periods -= self.interval;
        }
        let first = self.naive_start(0)?;
        Some(tz.from_local_datetime(&first).earliest().unwrap_or(self.origin))
    }

    fn week_of(&self, date: NaiveDate) -> NaiveDate {
        let back = (7 + date.weekday().num_days_from_monday() - self.week_start.num_days_from_monday()) % 7;
        date - Days::new(u64::from(back))
    }
}

fn months(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

fn hour_of(at: NaiveDateTime) -> NaiveDateTime {
    at.with_minute(0).and_then(|at| at.with_second(0)).and_then(|at| at.with_nanosecond(0)).unwrap_or(at)
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
            series_start: utc(due),
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
        // Completed three weeks late: three occurrences were skipped, and with COUNT they count.
        let next = step("FREQ=WEEKLY", "UTC", "2026-12-07T09:00:00Z", Some("2026-12-29T12:00:00Z"));
        assert_eq!(next.map(|o| o.due_at), Some(utc("2027-01-04T09:00:00Z")));
        let next = step("FREQ=WEEKLY;COUNT=10", "UTC", "2026-12-07T09:00:00Z", Some("2026-12-29T12:00:00Z"));
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

    fn current<'a>(rule: &'a str, zone: &str, start: &str, completed: Option<&str>) -> Current<'a> {
        Current {
            rule,
            timezone: TimeZone::parse("timezone", zone).unwrap(),
            anchor: RecurrenceAnchor::Due,
            series_start: utc(start),
            due_at: utc(start),
            series_index: 1,
            completed_at: completed.map(utc),
        }
    }

    #[test]
    fn a_late_completion_costs_the_gap_not_the_age_of_the_series() {
        // Reproduced in review: stepping this from year 1 took seconds of CPU per read.
        let sparse =
            current("FREQ=HOURLY;BYMONTH=1;BYMONTHDAY=1;BYHOUR=0", "UTC", "1900-01-01T00:00:00Z", None);
        assert_eq!(next_occurrence(sparse).unwrap().map(|o| o.due_at), Some(utc("1901-01-01T00:00:00Z")));
        let late = Current { completed_at: Some(utc("2026-12-10T12:00:00Z")), ..sparse };
        assert_eq!(next_occurrence(late).unwrap().map(|o| o.due_at), Some(utc("2027-01-01T00:00:00Z")));
        let hourly = current("FREQ=HOURLY", "UTC", "1900-01-01T09:00:00Z", Some("2026-12-10T12:00:00Z"));
        assert_eq!(next_occurrence(hourly).unwrap().map(|o| o.due_at), Some(utc("2026-12-10T13:00:00Z")));
    }

    #[test]
    fn a_search_resumes_past_the_crates_limit_of_empty_periods() {
        // Monday 29 February: 2016, then 2044, 245,000 hours later.
        let rule = "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0";
        let next = next_occurrence(current(rule, "UTC", "2016-02-29T09:00:00Z", None)).unwrap();
        assert_eq!(next.map(|o| o.due_at), Some(utc("2044-02-29T09:00:00Z")));
    }

    #[test]
    fn a_step_past_its_budget_gives_up_instead_of_spinning() {
        // COUNT makes every skipped hour count: over a century of them is past the budget.
        let counted =
            current("FREQ=HOURLY;COUNT=2000000", "UTC", "1900-01-01T09:00:00Z", Some("2026-12-10T12:00:00Z"));
        assert_eq!(next_occurrence(counted), Err(StepError::TooFar));
        // A rule that never matches: the search gives up after its budget of empty hours.
        let never = current("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "UTC", "2016-02-20T09:00:00Z", None);
        assert_eq!(next_occurrence(never), Err(StepError::TooFar));
    }

    #[test]
    fn a_series_ends_rather_than_step_past_year_9999() {
        let next = next_occurrence(current("FREQ=YEARLY", "UTC", "9999-06-01T09:00:00Z", None)).unwrap();
        assert_eq!(next, None);
    }

    #[test]
    fn a_broken_rule_is_an_error_not_a_panic() {
        let result = next_occurrence(Current {
            rule: "FREQ=NEVER",
            timezone: TimeZone::UTC,
            anchor: RecurrenceAnchor::Due,
            series_start: utc("2026-12-07T08:00:00Z"),
            due_at: utc("2026-12-07T08:00:00Z"),
            series_index: 1,
            completed_at: None,
        });
        assert!(matches!(result, Err(StepError::BadRule(_))));
    }

    /// Completes a series on time `n` times and gives each occurrence's local wall time.
    fn chain(rule: &str, zone: &str, first: &str, n: usize) -> Vec<String> {
        let tz = TimeZone::parse("timezone", zone).unwrap().tz();
        let series_start = DateTime::parse_from_rfc3339(first).unwrap().with_timezone(&Utc);
        let mut at = Current {
            rule,
            timezone: TimeZone::parse("timezone", zone).unwrap(),
            anchor: RecurrenceAnchor::Due,
            series_start,
            due_at: series_start,
            series_index: 1,
            completed_at: None,
        };
        let mut seen = vec![at.due_at.with_timezone(&tz).format("%m-%d %H:%M").to_string()];
        for _ in 0..n {
            let next = next_occurrence(at).unwrap().expect("the series goes on");
            at = Current { due_at: next.due_at, series_index: next.series_index, ..at };
            seen.push(next.due_at.with_timezone(&tz).format("%m-%d %H:%M").to_string());
        }
        seen
    }

    // Daylight saving in 2027: Berlin springs forward on 28 March at 02:00 and falls back on
    // 31 October at 03:00; New York on 14 March at 02:00 and 7 November at 02:00; Lord Howe
    // moves by 30 minutes, back on 4 April at 02:00 and forward on 3 October at 02:00.

    #[test]
    fn a_daily_series_returns_to_its_wall_time_after_the_spring_gap() {
        // The review's case: only the occurrence inside the gap moves.
        assert_eq!(
            chain("FREQ=DAILY", "Europe/Berlin", "2027-03-27T02:30:00+01:00", 3),
            ["03-27 02:30", "03-28 03:30", "03-29 02:30", "03-30 02:30"]
        );
        assert_eq!(
            chain("FREQ=DAILY", "America/New_York", "2027-03-13T02:30:00-05:00", 3),
            ["03-13 02:30", "03-14 03:30", "03-15 02:30", "03-16 02:30"]
        );
        assert_eq!(
            chain("FREQ=DAILY", "Australia/Lord_Howe", "2027-10-02T02:15:00+10:30", 3),
            ["10-02 02:15", "10-03 02:45", "10-04 02:15", "10-05 02:15"]
        );
    }

    #[test]
    fn a_daily_series_keeps_its_wall_time_through_the_autumn_overlap() {
        assert_eq!(
            chain("FREQ=DAILY", "America/New_York", "2027-11-06T01:30:00-04:00", 3),
            ["11-06 01:30", "11-07 01:30", "11-08 01:30", "11-09 01:30"]
        );
        assert_eq!(
            chain("FREQ=DAILY", "Europe/Berlin", "2027-10-30T02:30:00+02:00", 2),
            ["10-30 02:30", "10-31 02:30", "11-01 02:30"]
        );
        assert_eq!(
            chain("FREQ=DAILY", "Australia/Lord_Howe", "2027-04-03T01:45:00+11:00", 2),
            ["04-03 01:45", "04-04 01:45", "04-05 01:45"]
        );
    }

    #[test]
    fn weekly_and_two_daily_series_keep_their_wall_time_across_gaps() {
        assert_eq!(
            chain("FREQ=WEEKLY", "Europe/Berlin", "2027-03-21T02:30:00+01:00", 3),
            ["03-21 02:30", "03-28 03:30", "04-04 02:30", "04-11 02:30"]
        );
        assert_eq!(
            chain("FREQ=DAILY;INTERVAL=2", "America/New_York", "2027-03-12T02:30:00-05:00", 3),
            ["03-12 02:30", "03-14 03:30", "03-16 02:30", "03-18 02:30"]
        );
        assert_eq!(
            chain("FREQ=WEEKLY;BYDAY=SU,WE", "Australia/Lord_Howe", "2027-09-29T02:10:00+10:30", 4),
            ["09-29 02:10", "10-03 02:40", "10-06 02:10", "10-10 02:10", "10-13 02:10"]
        );
        assert_eq!(
            chain("FREQ=DAILY;INTERVAL=2", "Australia/Lord_Howe", "2027-04-02T01:40:00+11:00", 3),
            ["04-02 01:40", "04-04 01:40", "04-06 01:40", "04-08 01:40"]
        );
    }
}
