//! A task as clients see it, and the step its series takes from it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::recurrence::{Current, Occurrence, StepError, next_occurrence};
use super::{Priority, RecurrenceAnchor, TimeZone};

/// A task as clients see it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "web", derive(utoipa::ToSchema))]
pub struct Task {
    pub id: Uuid,
    #[serde(skip)]
    pub user_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub completed: bool,
    pub completed_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub due_at: Option<DateTime<Utc>>,
    /// IANA time zone the task's recurrence is expanded in.
    pub timezone: String,
    pub reminder_at: Option<DateTime<Utc>>,
    pub recurrence_rule: Option<String>,
    pub recurrence_anchor: RecurrenceAnchor,
    pub is_recurring: bool,
    pub series_id: Option<Uuid>,
    /// The due time the next occurrence will have (as if this one were completed on time, until
    /// it is completed), or `null` when the task does not recur or its series has ended.
    /// Computed when the task is written, never on a read.
    pub next_occurrence_at: Option<DateTime<Utc>>,
    /// Why this completed occurrence's successor is not made yet: `task_limit_reached` while the
    /// account holds its maximum of tasks. The series resumes by itself once there is room.
    pub series_paused: Option<String>,
    /// The series' DTSTART, whose local wall time every occurrence is meant to have.
    #[serde(skip)]
    pub series_start: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub occurrence_at: Option<DateTime<Utc>>,
    /// This occurrence's place in its series, from 1.
    #[serde(skip)]
    pub series_index: Option<i32>,
    #[serde(skip)]
    pub next_occurrence_queued: bool,
    /// The task's project; `null` is the inbox.
    pub project_id: Option<Uuid>,
    /// The task this one is a subtask of; `null` at the top level.
    pub parent_id: Option<Uuid>,
    /// Manual order among its siblings; ties list in creation order.
    pub position: i32,
    /// Live (not trashed) direct subtasks, kept as they change, never counted on read.
    pub subtask_count: i32,
    /// Those of them that are completed.
    pub completed_subtask_count: i32,
    /// The task whose deletion trashed this one (itself when deleted on its own).
    #[serde(skip)]
    pub trashed_with: Option<Uuid>,
    /// When the task went to the trash; `null` for a live task, sent like every other unset
    /// field so clients see one shape.
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Task {
    /// Strong validator from identity and version: any change bumps the version.
    pub fn etag(&self) -> String {
        format!("\"{}-{}\"", self.id.simple(), self.version)
    }
}

impl Task {
    /// The occurrence that completing this one (at `completed_at`, or on time when `None`)
    /// brings, from the stored fields alone. Bounded, but it may take milliseconds: writers run
    /// it through `crate::stepping`, off the async threads.
    pub fn next_occurrence(
        &self,
        completed_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Occurrence>, StepError> {
        let (Some(rule), Some(due_at), Some(series_index)) =
            (self.recurrence_rule.as_deref(), self.due_at, self.series_index)
        else {
            return Ok(None);
        };
        let timezone = TimeZone::parse("timezone", &self.timezone)
            .map_err(|_| StepError::BadRule(format!("unknown time zone {:?}", self.timezone)))?;
        next_occurrence(Current {
            rule,
            timezone,
            anchor: self.recurrence_anchor,
            series_start: self.series_start.unwrap_or(due_at),
            due_at,
            series_index,
            completed_at,
        })
    }
}
