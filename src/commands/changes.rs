//! A merge patch of a task, applied to its current state.

use chrono::{DateTime, Utc};

use crate::domain::{
    Description, Invalid, Patch, Priority, RecurrenceAnchor, RecurrenceRule, Tags, Task, TaskFields,
    TimeZone, Title,
};

/// Fields left `None`/`Absent` stay as they are; `Patch::Null` clears a nullable field.
#[derive(Debug, Clone, Default)]
pub struct TaskChanges {
    pub title: Option<Title>,
    pub description: Patch<Description>,
    pub completed: Option<bool>,
    pub priority: Option<Priority>,
    pub tags: Option<Tags>,
    pub due_at: Patch<DateTime<Utc>>,
    pub timezone: Option<TimeZone>,
    pub reminder_at: Patch<DateTime<Utc>>,
    pub recurrence_rule: Patch<RecurrenceRule>,
    pub recurrence_anchor: Option<RecurrenceAnchor>,
    pub project_id: Patch<uuid::Uuid>,
}

impl TaskChanges {
    /// The task's fields after this patch. Cross-field rules are checked by the caller.
    pub fn apply(self, current: &Task) -> Result<TaskFields, Invalid> {
        let now = current.fields()?;
        Ok(TaskFields {
            title: self.title.unwrap_or(now.title),
            description: self.description.apply(now.description),
            completed: self.completed.unwrap_or(now.completed),
            priority: self.priority.unwrap_or(now.priority),
            tags: self.tags.unwrap_or(now.tags),
            due_at: self.due_at.apply(now.due_at),
            timezone: self.timezone.unwrap_or(now.timezone),
            reminder_at: self.reminder_at.apply(now.reminder_at),
            recurrence_rule: self.recurrence_rule.apply(now.recurrence_rule),
            recurrence_anchor: self.recurrence_anchor.unwrap_or(now.recurrence_anchor),
            project_id: self.project_id.apply(now.project_id),
        })
    }
}
