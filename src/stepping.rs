//! Rule stepping for the write side and the worker. A step is bounded (see [`crate::domain::recurrence`]) but may still
//! take tens of milliseconds, so it runs on the blocking pool, a few at a time, never on the
//! async thread that carries a command (an actix worker serves many users' requests).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;

use crate::db::tasks::{Series, Task};
use crate::domain::recurrence::{Current, Occurrence, StepError, next_occurrence};
use crate::domain::{Invalid, RecurrenceAnchor, TaskFields, TimeZone};

/// One step per core at most: more would only queue on the CPU, and callers wait here instead.
static PERMITS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from)));

/// A series at one of its occurrences, owned so a step can move to another thread.
#[derive(Debug, Clone)]
pub struct SeriesAt {
    rule: String,
    timezone: TimeZone,
    anchor: RecurrenceAnchor,
    start: DateTime<Utc>,
    due_at: DateTime<Utc>,
    index: i32,
}

impl SeriesAt {
    /// The series a task being written is at; `None` when it does not recur.
    pub fn of_fields(fields: &TaskFields, series: Option<Series>) -> Option<Self> {
        let (rule, due_at, series) = (fields.recurrence_rule.as_ref()?, fields.due_at?, series?);
        Some(Self {
            rule: rule.as_str().to_owned(),
            timezone: fields.timezone,
            anchor: fields.recurrence_anchor,
            start: series.start,
            due_at,
            index: series.index,
        })
    }

    /// The series a stored task is at; `None` when it does not recur.
    pub fn of_task(task: &Task) -> Option<Self> {
        let (rule, due_at) = (task.recurrence_rule.as_ref()?, task.due_at?);
        Some(Self {
            rule: rule.clone(),
            timezone: TimeZone::parse("timezone", &task.timezone).ok()?,
            anchor: task.recurrence_anchor,
            start: task.series_start.unwrap_or(due_at),
            due_at,
            index: task.series_index.unwrap_or(1),
        })
    }

    /// The same series at its next occurrence.
    pub fn at(&self, next: Occurrence) -> Self {
        let start = match self.anchor {
            RecurrenceAnchor::Due => self.start,
            RecurrenceAnchor::Completion => next.due_at,
        };
        Self { start, due_at: next.due_at, index: next.series_index, ..self.clone() }
    }

    pub fn step(&self, completed_at: Option<DateTime<Utc>>) -> Result<Option<Occurrence>, StepError> {
        next_occurrence(Current {
            rule: &self.rule,
            timezone: self.timezone,
            anchor: self.anchor,
            series_start: self.start,
            due_at: self.due_at,
            series_index: self.index,
            completed_at,
        })
    }

    /// The `next_occurrence_at` a write stores. With `check_rule` (the rule, its zone, anchor
    /// or start is new) the series must also go on past this occurrence, unless COUNT or UNTIL
    /// ends it. Either failure names `recurrence_rule`.
    fn next_due(
        &self,
        completed_at: Option<DateTime<Utc>>,
        check_rule: bool,
    ) -> Result<Option<DateTime<Utc>>, Invalid> {
        if check_rule {
            let on_time = self.step(None).map_err(refused)?;
            if on_time.is_none() && !self.has_end() {
                return Err(Invalid::new("recurrence_rule", "never produces an occurrence after the first"));
            }
            if completed_at.is_none() {
                return Ok(on_time.map(|next| next.due_at));
            }
        }
        Ok(self.step(completed_at).map_err(refused)?.map(|next| next.due_at))
    }

    fn has_end(&self) -> bool {
        self.rule
            .parse::<rrule::RRule<rrule::Unvalidated>>()
            .is_ok_and(|rule| rule.get_count().is_some() || rule.get_until().is_some())
    }
}

fn refused(err: StepError) -> Invalid {
    match err {
        StepError::BadRule(message) => {
            Invalid::new("recurrence_rule", format!("not a valid RFC 5545 RRULE: {message}"))
        }
        StepError::TooFar => Invalid::new(
            "recurrence_rule",
            "the next occurrence is too far from this one to compute; choose a closer due date or a denser rule",
        ),
    }
}

/// Why a step could not run at all.
#[derive(Debug, thiserror::Error)]
#[error("the recurrence step did not finish: {0}")]
pub struct NotRun(String);

/// Runs `work` on the blocking pool once a permit is free.
pub async fn off_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, NotRun> {
    let _permit = PERMITS.acquire().await.map_err(|e| NotRun(e.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| NotRun(e.to_string()))
}

/// [`SeriesAt::next_due`] off the async threads; `Ok(None)` for a task that does not recur.
pub async fn next_due(
    series: Option<SeriesAt>,
    completed_at: Option<DateTime<Utc>>,
    check_rule: bool,
) -> Result<Result<Option<DateTime<Utc>>, Invalid>, NotRun> {
    match series {
        None => Ok(Ok(None)),
        Some(series) => off_thread(move || series.next_due(completed_at, check_rule)).await,
    }
}
