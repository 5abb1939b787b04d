//! Task request bodies. Bodies are read field by field from the JSON object, so every problem,
//! including a wrong JSON type, is reported against the field that has it.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::TaskChanges;
use crate::domain::{
    Description, Invalid, Patch, Priority, RecurrenceAnchor, RecurrenceRule, Tags, TaskFields, TimeZone,
    Title,
};

/// A task as POST and PUT take it: `title` is required; left-out fields take their defaults.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Documents the body; parsing is field by field in `TaskForm`.
pub struct TaskInput {
    /// 1–200 characters after trimming.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[schema(nullable = false)]
    completed: Option<bool>,
    #[schema(nullable = false)]
    priority: Option<PriorityName>,
    /// At most 20; each 1–50 characters; de-duplicated and lower-cased.
    #[schema(nullable = false, max_items = 20)]
    tags: Option<Vec<String>>,
    /// RFC 3339 with an offset.
    due_at: Option<DateTime<Utc>>,
    /// IANA name; defaults to the user's time zone.
    #[schema(nullable = false)]
    timezone: Option<String>,
    /// RFC 3339 with an offset; not after `due_at`.
    reminder_at: Option<DateTime<Utc>>,
    /// An RFC 5545 RRULE body such as `FREQ=WEEKLY;BYDAY=MO`; needs `due_at`.
    #[schema(max_length = 500)]
    recurrence_rule: Option<String>,
    #[schema(nullable = false)]
    recurrence_anchor: Option<AnchorName>,
    /// One of the caller's projects; `null` (the default) is the inbox.
    #[schema(format = Uuid)]
    project_id: Option<String>,
}

/// A merge patch of a task (PATCH): only the fields sent change, and `null` clears a nullable one.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Documents the body; parsing is field by field in `TaskForm`.
pub struct TaskPatch {
    #[schema(nullable = false, min_length = 1, max_length = 200)]
    title: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[schema(nullable = false)]
    completed: Option<bool>,
    #[schema(nullable = false)]
    priority: Option<PriorityName>,
    /// `null` clears the tags.
    #[schema(max_items = 20)]
    tags: Option<Vec<String>>,
    due_at: Option<DateTime<Utc>>,
    #[schema(nullable = false)]
    timezone: Option<String>,
    reminder_at: Option<DateTime<Utc>>,
    #[schema(max_length = 500)]
    recurrence_rule: Option<String>,
    #[schema(nullable = false)]
    recurrence_anchor: Option<AnchorName>,
    /// Moves the task to this project; `null` moves it to the inbox.
    #[schema(format = Uuid)]
    project_id: Option<String>,
}

/// A priority, in any letter case.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum PriorityName {
    Low,
    Medium,
    High,
}

/// What a recurring task's next occurrence is counted from.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub enum AnchorName {
    Due,
    Completion,
}

pub const FIELDS: &[&str] = &[
    "title",
    "description",
    "completed",
    "priority",
    "tags",
    "due_at",
    "timezone",
    "reminder_at",
    "recurrence_rule",
    "recurrence_anchor",
    "project_id",
];

/// A parsed body: each field absent, null or a valid value.
pub struct TaskForm {
    title: Patch<Title>,
    description: Patch<Description>,
    completed: Patch<bool>,
    priority: Patch<Priority>,
    tags: Patch<Tags>,
    due_at: Patch<DateTime<Utc>>,
    timezone: Patch<TimeZone>,
    reminder_at: Patch<DateTime<Utc>>,
    recurrence_rule: Patch<RecurrenceRule>,
    recurrence_anchor: Patch<RecurrenceAnchor>,
    project_id: Patch<Uuid>,
}

impl TaskForm {
    pub fn parse(body: Value) -> Result<Self, Vec<Invalid>> {
        let Value::Object(map) = body else {
            return Err(vec![Invalid::new("body", "must be a JSON object")]);
        };
        let mut errors: Vec<Invalid> = map
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .map(|k| Invalid::new(k.clone(), "is not a task field"))
            .collect();
        let mut read = Reader { map: &map, errors: &mut errors };
        let form = Self {
            title: read.field("title", "a string", |s: String| Title::parse(&s)),
            description: read.field("description", "a string", |s: String| Description::parse(&s)),
            completed: read.field("completed", "true or false", Ok),
            priority: read.field("priority", "a string", |s: String| Priority::parse(&s)),
            tags: read.field("tags", "an array of strings", |v: Vec<String>| Tags::parse(&v)),
            due_at: read.field("due_at", "an RFC 3339 string", |s: String| timestamp("due_at", &s)),
            timezone: read.field("timezone", "a string", |s: String| TimeZone::parse("timezone", &s)),
            reminder_at: read
                .field("reminder_at", "an RFC 3339 string", |s: String| timestamp("reminder_at", &s)),
            recurrence_rule: read.field("recurrence_rule", "a string", |s: String| RecurrenceRule::parse(&s)),
            recurrence_anchor: read
                .field("recurrence_anchor", "a string", |s: String| RecurrenceAnchor::parse(&s)),
            project_id: read.field("project_id", "a project id", |s: String| {
                s.parse::<Uuid>().map_err(|_| Invalid::new("project_id", "must be a project id"))
            }),
        };
        if errors.is_empty() { Ok(form) } else { Err(errors) }
    }

    /// A whole task, for create and replace: left-out fields take their defaults.
    pub fn into_fields(self) -> Result<TaskFields<Option<TimeZone>>, Vec<Invalid>> {
        let mut errors = Vec::new();
        let title = match self.title {
            Patch::Value(title) => Some(title),
            _ => {
                errors.push(Invalid::new("title", "is required"));
                None
            }
        };
        let completed = required_or_default(self.completed, "completed", &mut errors);
        let priority = required_or_default(self.priority, "priority", &mut errors);
        let timezone = match self.timezone {
            Patch::Null => {
                errors.push(Invalid::new("timezone", "cannot be null; leave it out for the default"));
                None
            }
            other => other.apply(None),
        };
        let recurrence_anchor = required_or_default(self.recurrence_anchor, "recurrence_anchor", &mut errors);
        match title {
            Some(title) if errors.is_empty() => Ok(TaskFields {
                title,
                description: self.description.apply(None),
                completed,
                priority,
                tags: self.tags.apply(None).unwrap_or_default(),
                due_at: self.due_at.apply(None),
                timezone,
                reminder_at: self.reminder_at.apply(None),
                recurrence_rule: self.recurrence_rule.apply(None),
                recurrence_anchor,
                project_id: self.project_id.apply(None),
            }),
            _ => Err(errors),
        }
    }

    /// A merge patch.
    pub fn into_changes(self) -> Result<TaskChanges, Vec<Invalid>> {
        let mut errors = Vec::new();
        let changes = TaskChanges {
            title: not_null(self.title, "title", &mut errors),
            description: self.description,
            completed: not_null(self.completed, "completed", &mut errors),
            priority: not_null(self.priority, "priority", &mut errors),
            // Clearing tags means no tags.
            tags: match self.tags {
                Patch::Absent => None,
                Patch::Null => Some(Tags::default()),
                Patch::Value(tags) => Some(tags),
            },
            due_at: self.due_at,
            timezone: not_null(self.timezone, "timezone", &mut errors),
            reminder_at: self.reminder_at,
            recurrence_rule: self.recurrence_rule,
            recurrence_anchor: not_null(self.recurrence_anchor, "recurrence_anchor", &mut errors),
            project_id: self.project_id,
        };
        if errors.is_empty() { Ok(changes) } else { Err(errors) }
    }
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    errors: &'a mut Vec<Invalid>,
}

impl Reader<'_> {
    fn field<Raw: DeserializeOwned, T>(
        &mut self,
        name: &'static str,
        expected: &str,
        parse: impl FnOnce(Raw) -> Result<T, Invalid>,
    ) -> Patch<T> {
        match self.map.get(name) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(value) => match serde_json::from_value::<Raw>(value.clone()) {
                Err(_) => {
                    self.errors.push(Invalid::new(name, format!("must be {expected}")));
                    Patch::Absent
                }
                Ok(raw) => match parse(raw) {
                    Ok(parsed) => Patch::Value(parsed),
                    Err(invalid) => {
                        self.errors.push(invalid);
                        Patch::Absent
                    }
                },
            },
        }
    }
}

fn timestamp(field: &'static str, raw: &str) -> Result<DateTime<Utc>, Invalid> {
    let at = DateTime::parse_from_rfc3339(raw.trim()).map(|t| t.to_utc()).map_err(|_| {
        Invalid::new(field, "must be an RFC 3339 time with an offset, e.g. 2026-05-01T09:00:00+02:00")
    })?;
    crate::domain::check_instant(field, at)
}

fn required_or_default<T: Default>(patch: Patch<T>, field: &'static str, errors: &mut Vec<Invalid>) -> T {
    match patch {
        Patch::Null => {
            errors.push(Invalid::new(field, "cannot be null"));
            T::default()
        }
        other => other.apply(None).unwrap_or_default(),
    }
}

fn not_null<T>(patch: Patch<T>, field: &'static str, errors: &mut Vec<Invalid>) -> Option<T> {
    match patch {
        Patch::Null => {
            errors.push(Invalid::new(field, "cannot be null"));
            None
        }
        other => other.apply(None),
    }
}
