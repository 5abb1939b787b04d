//! A stored task row and its conversion to the client's view.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{Priority, RecurrenceAnchor, Task};

pub(in crate::db) const COLUMNS: &str = "id, user_id, title, description, completed, completed_at, priority, tags, due_at, timezone, \
     reminder_at, recurrence_rule, recurrence_anchor, series_id, occurrence_at, series_index, next_occurrence_queued, series_start, next_occurrence_at, series_paused, \
     project_id, parent_id, position, subtask_count, completed_subtask_count, trashed_with, deleted_at, created_at, updated_at, version";

#[derive(sqlx::FromRow)]
pub(in crate::db) struct TaskRow {
    pub(in crate::db) id: Uuid,
    pub(in crate::db) user_id: Uuid,
    pub(in crate::db) title: String,
    pub(in crate::db) description: Option<String>,
    pub(in crate::db) completed: bool,
    pub(in crate::db) completed_at: Option<DateTime<Utc>>,
    pub(in crate::db) priority: i16,
    pub(in crate::db) tags: Vec<String>,
    pub(in crate::db) due_at: Option<DateTime<Utc>>,
    pub(in crate::db) timezone: String,
    pub(in crate::db) reminder_at: Option<DateTime<Utc>>,
    pub(in crate::db) recurrence_rule: Option<String>,
    pub(in crate::db) recurrence_anchor: String,
    pub(in crate::db) series_id: Option<Uuid>,
    pub(in crate::db) occurrence_at: Option<DateTime<Utc>>,
    pub(in crate::db) series_index: Option<i32>,
    pub(in crate::db) next_occurrence_queued: bool,
    pub(in crate::db) series_start: Option<DateTime<Utc>>,
    pub(in crate::db) next_occurrence_at: Option<DateTime<Utc>>,
    pub(in crate::db) series_paused: Option<String>,
    pub(in crate::db) project_id: Option<Uuid>,
    pub(in crate::db) parent_id: Option<Uuid>,
    pub(in crate::db) position: i32,
    pub(in crate::db) subtask_count: i32,
    pub(in crate::db) completed_subtask_count: i32,
    pub(in crate::db) trashed_with: Option<Uuid>,
    pub(in crate::db) deleted_at: Option<DateTime<Utc>>,
    pub(in crate::db) created_at: DateTime<Utc>,
    pub(in crate::db) updated_at: DateTime<Utc>,
    pub(in crate::db) version: i64,
}

impl From<TaskRow> for Task {
    fn from(r: TaskRow) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            title: r.title,
            description: r.description,
            completed: r.completed,
            completed_at: r.completed_at,
            priority: Priority::from_rank(r.priority),
            tags: r.tags,
            due_at: r.due_at,
            timezone: r.timezone,
            reminder_at: r.reminder_at,
            is_recurring: r.recurrence_rule.is_some(),
            recurrence_rule: r.recurrence_rule,
            recurrence_anchor: RecurrenceAnchor::parse(&r.recurrence_anchor).unwrap_or_default(),
            series_id: r.series_id,
            next_occurrence_at: r.next_occurrence_at,
            series_paused: r.series_paused,
            series_start: r.series_start,
            occurrence_at: r.occurrence_at,
            series_index: r.series_index,
            next_occurrence_queued: r.next_occurrence_queued,
            project_id: r.project_id,
            parent_id: r.parent_id,
            position: r.position,
            subtask_count: r.subtask_count,
            completed_subtask_count: r.completed_subtask_count,
            trashed_with: r.trashed_with,
            deleted_at: r.deleted_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}
