//! The fields a client writes on a task, declared once.
//!
//! [`task_fields!`] lists each field with its domain type, how a body may leave it out or null
//! it (its kind), how the form reads it from JSON, how it is re-read from a stored task, and
//! its schema for the API document. Everything that lists the fields is generated from it: the
//! whole-task value ([`TaskFields`]), the merge patch ([`TaskChanges`]) with its rules, the
//! re-reading of a stored task, (in the web layer) the body parser and its schemas, and (in the
//! database layer) the column every write path sets. A new field is one entry here, its place in
//! `Task` and the stored row for reading it back, and a migration.
//!
//! The kinds:
//! - `required`: a whole task must carry it, and it cannot be null;
//! - `defaulted`: left out, it takes its default; it cannot be null;
//! - `cleared`: left out or null, it takes its default (null clears it);
//! - `nullable`: left out or null, it has none;
//! - `zone`: left out of a whole task, it is the owner's time zone; it cannot be null.
//! - `placed`: left out (of a whole task or a patch), the write works it out from the task's
//!   siblings (`None` until then); it cannot be null.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Description, Invalid, Patch, Priority, RecurrenceAnchor, RecurrenceRule, Tags, Task, TimeZone, Title,
};

/// Calls `$consumer!` with every client-written field of a task. Each entry is
/// `name: Type [kind] "JSON shape" |raw: Raw| parse, stored |task| read, schema build,
/// column "SQL type" (=> "stored expression")? = |value| bound;`.
#[macro_export]
macro_rules! task_fields {
    ($consumer:path) => {
        $consumer! {
            /// 1–200 characters after trimming.
            title: Title [required] "a string" |s: String| Title::parse(&s),
                stored |t| Title::parse(&t.title), schema text(Some(1), Some(200)),
                column "text" = |v| v.as_str().to_owned();
            /// At most 2000 characters.
            description: Description [nullable] "a string" |s: String| Description::parse(&s),
                stored |t| t.description.as_deref().map(Description::parse).transpose(),
                schema text(None, Some(2000)),
                column "text" = |v| v.as_str().to_owned();
            completed: bool [defaulted] "true or false" |b: bool| Ok(b),
                stored |t| Ok(t.completed), schema boolean(),
                column "boolean" = |v| *v;
            /// `low`, `medium` (the default) or `high`, in any letter case.
            priority: Priority [defaulted] "a string" |s: String| Priority::parse(&s),
                stored |t| Ok(t.priority), schema named::<Priority>(),
                column "smallint" = |v| v.rank();
            /// At most 20; each 1–50 characters; de-duplicated and lower-cased. `null` clears them.
            tags: Tags [cleared] "an array of strings" |v: Vec<String>| Tags::parse(&v),
                stored |t| Tags::parse(&t.tags), schema tag_list(20),
                // Arrays of arrays do not unnest row by row: tags travel as JSON.
                column "jsonb" => "ARRAY(SELECT jsonb_array_elements_text(r.tags))" = |v| serde_json::json!(v.as_slice());
            /// RFC 3339 with an offset, between 1900-01-01 and 9999-12-31 UTC.
            due_at: DateTime<Utc> [nullable] "an RFC 3339 string" |s: String| parse_instant("due_at", &s),
                stored |t| Ok(t.due_at), schema instant(),
                column "timestamptz" = |v| *v;
            /// IANA name; defaults to the user's time zone.
            timezone: TimeZone [zone] "a string" |s: String| TimeZone::parse("timezone", &s),
                stored |t| TimeZone::parse("timezone", &t.timezone), schema text(None, None),
                // The one-statement create leaves it to the owner's zone, which the statement reads.
                column "text" => "coalesce(r.timezone, u.timezone)" = |v| v.name().to_owned();
            /// RFC 3339 with an offset; not after `due_at`.
            reminder_at: DateTime<Utc> [nullable] "an RFC 3339 string" |s: String| parse_instant("reminder_at", &s),
                stored |t| Ok(t.reminder_at), schema instant(),
                column "timestamptz" = |v| *v;
            /// An RFC 5545 RRULE body such as `FREQ=WEEKLY;BYDAY=MO`; needs `due_at`.
            recurrence_rule: RecurrenceRule [nullable] "a string" |s: String| RecurrenceRule::parse(&s),
                stored |t| t.recurrence_rule.as_deref().map(RecurrenceRule::parse).transpose(),
                schema text(None, Some(500)),
                column "text" = |v| v.as_str().to_owned();
            /// What the next occurrence is counted from: `due` (the default) or `completion`.
            recurrence_anchor: RecurrenceAnchor [defaulted] "a string" |s: String| RecurrenceAnchor::parse(&s),
                stored |t| Ok(t.recurrence_anchor), schema named::<RecurrenceAnchor>(),
                column "text" = |v| v.as_str();
            /// One of the caller's projects; `null` is the inbox. Ownership is the database's
            /// to check (a composite foreign key).
            project_id: Uuid [nullable] "a project id" |s: String| parse_project(&s),
                stored |t| Ok(t.project_id), schema uuid(),
                column "uuid" = |v| *v;
            /// The task this one is a subtask of: one of the caller's live tasks, whose project
            /// it then shares; `null` is top level. At most four levels deep and 200 subtasks
            /// per task, never its own ancestor, and a subtask does not recur.
            parent_id: Uuid [nullable] "a task id" |s: String| parse_parent(&s),
                stored |t| Ok(t.parent_id), schema uuid(),
                column "uuid" = |v| *v;
            /// Manual order among its siblings, 0–1000000; ties list in creation order. Left
            /// out, a new subtask, or a task given a new parent, goes after its last sibling;
            /// any other write keeps it where it is.
            position: i32 [placed] "an integer" |n: i64| parse_position(n),
                stored |t| Ok(Some(t.position)), schema integer(0, 1_000_000),
                column "integer" = |v| *v;
        }
    };
}

/// The domain's view of the table: the field types and the rules of each kind.
macro_rules! define_fields {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty [$kind:ident] $shape:literal |$raw:ident : $raw_ty:ty| $parse:expr,
        stored |$t:ident| $stored:expr, schema $schema:expr,
        column $col_ty:literal $(=> $col_select:literal)? = |$v:ident| $col_value:expr; )*) => {
        /// Every editable field of a task. As a create or full replace supplies them, the time
        /// zone may be left out (`TaskFields<Option<TimeZone>>`) and defaults to the owner's.
        pub struct TaskFields<Zone = TimeZone> {
            $( $(#[doc = $doc])* pub $name: field_type!($kind, $ty, Zone), )*
        }

        // Written out: `derive` does not take fields whose type is a macro.
        impl<Zone: Clone> Clone for TaskFields<Zone> {
            fn clone(&self) -> Self {
                Self { $( $name: self.$name.clone(), )* }
            }
        }

        impl<Zone: std::fmt::Debug> std::fmt::Debug for TaskFields<Zone> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct("TaskFields") $( .field(stringify!($name), &self.$name) )* .finish()
            }
        }

        /// A body's fields as sent: each left out, null or a valid value. A merge patch applies
        /// it to the stored task; a create or replace takes it whole.
        #[derive(Debug, Clone, Default)]
        pub struct TaskChanges {
            $( pub $name: Patch<$ty>, )*
        }

        impl TaskFields<Option<TimeZone>> {
            pub fn with_default_timezone(self, default: TimeZone) -> TaskFields {
                TaskFields { $( $name: $kind::with_zone(self.$name, default), )* }
            }
        }

        impl TaskChanges {
            /// A whole task (create, replace): left-out fields take their defaults.
            pub fn into_fields(self) -> Result<TaskFields<Option<TimeZone>>, Vec<Invalid>> {
                let mut errors = Vec::new();
                $( let $name = $kind::whole(self.$name, stringify!($name), &mut errors); )*
                match ($($name,)*) {
                    ($(Some($name),)*) if errors.is_empty() => Ok(TaskFields { $($name,)* }),
                    _ => Err(errors),
                }
            }

            /// Checks a merge patch: fields that cannot be null must not be sent as null.
            pub fn check_patch(&self) -> Result<(), Vec<Invalid>> {
                let mut errors = Vec::new();
                $( $kind::check(&self.$name, stringify!($name), &mut errors); )*
                if errors.is_empty() { Ok(()) } else { Err(errors) }
            }

            /// The task's fields after this patch. Cross-field rules are checked by the caller.
            pub fn apply(self, current: &Task) -> Result<TaskFields, Invalid> {
                let now = current.fields()?;
                Ok(TaskFields { $( $name: $kind::merge(self.$name, now.$name), )* })
            }
        }

        impl Task {
            /// Re-reads stored values through the domain parsers. They were valid when written,
            /// so a failure here means the rules were tightened since; it is reported against
            /// the field.
            pub fn fields(&self) -> Result<TaskFields, Invalid> {
                Ok(TaskFields { $( $name: (|$t: &Task| $stored)(self)?, )* })
            }
        }
    };
}

macro_rules! field_type {
    (nullable, $ty:ty, $zone:ty) => { Option<$ty> };
    (zone, $ty:ty, $zone:ty) => { $zone };
    (placed, $ty:ty, $zone:ty) => { Option<$ty> };
    ($kind:ident, $ty:ty, $zone:ty) => { $ty };
}

task_fields!(define_fields);

/// An RFC 3339 time with an offset, within the span a task may carry.
pub fn parse_instant(field: &'static str, raw: &str) -> Result<DateTime<Utc>, Invalid> {
    let at = DateTime::parse_from_rfc3339(raw.trim()).map(|t| t.to_utc()).map_err(|_| {
        Invalid::new(field, "must be an RFC 3339 time with an offset, e.g. 2026-05-01T09:00:00+02:00")
    })?;
    super::check_instant(field, at)
}

/// A project id as a body gives it.
pub fn parse_project(raw: &str) -> Result<Uuid, Invalid> {
    raw.parse::<Uuid>().map_err(|_| Invalid::new("project_id", "must be a project id"))
}

/// A parent task's id as a body gives it.
pub fn parse_parent(raw: &str) -> Result<Uuid, Invalid> {
    raw.parse::<Uuid>().map_err(|_| Invalid::new("parent_id", "must be a task id"))
}

/// A subtask's place among its siblings.
pub fn parse_position(raw: i64) -> Result<i32, Invalid> {
    super::Position::parse(raw).map(super::Position::get)
}

fn cannot_be_null(field: &'static str, errors: &mut Vec<Invalid>) {
    errors.push(Invalid::new(field, "cannot be null"));
}

/// The rules of each kind. `whole` reads a field of a whole task (`None` when it broke a rule,
/// recorded in `errors`); `check` refuses what a merge patch may not send; `merge` applies a
/// patch to the stored value; `with_zone` fills in the owner's zone.
#[allow(non_snake_case, dead_code)]
mod kinds {
    use super::{Invalid, Patch, TimeZone, cannot_be_null};

    pub mod required {
        use super::*;
        pub fn whole<T>(p: Patch<T>, field: &'static str, errors: &mut Vec<Invalid>) -> Option<T> {
            match p {
                Patch::Value(v) => Some(v),
                _ => {
                    errors.push(Invalid::new(field, "is required"));
                    None
                }
            }
        }
        pub fn check<T>(p: &Patch<T>, field: &'static str, errors: &mut Vec<Invalid>) {
            if matches!(p, Patch::Null) {
                cannot_be_null(field, errors);
            }
        }
        pub fn merge<T>(p: Patch<T>, current: T) -> T {
            p.apply(None).unwrap_or(current)
        }
        pub fn with_zone<T>(v: T, _: TimeZone) -> T {
            v
        }
    }

    pub mod defaulted {
        use super::*;
        pub fn whole<T: Default>(p: Patch<T>, field: &'static str, errors: &mut Vec<Invalid>) -> Option<T> {
            if matches!(p, Patch::Null) {
                cannot_be_null(field, errors);
            }
            Some(p.apply(None).unwrap_or_default())
        }
        pub use super::required::{check, merge, with_zone};
    }

    pub mod cleared {
        use super::*;
        pub fn whole<T: Default>(p: Patch<T>, _: &'static str, _: &mut Vec<Invalid>) -> Option<T> {
            Some(p.apply(None).unwrap_or_default())
        }
        pub fn check<T>(_: &Patch<T>, _: &'static str, _: &mut Vec<Invalid>) {}
        pub fn merge<T: Default>(p: Patch<T>, current: T) -> T {
            match p {
                Patch::Absent => current,
                Patch::Null => T::default(),
                Patch::Value(v) => v,
            }
        }
        pub use super::required::with_zone;
    }

    pub mod nullable {
        use super::*;
        pub fn whole<T>(p: Patch<T>, _: &'static str, _: &mut Vec<Invalid>) -> Option<Option<T>> {
            Some(p.apply(None))
        }
        pub fn check<T>(_: &Patch<T>, _: &'static str, _: &mut Vec<Invalid>) {}
        pub fn merge<T>(p: Patch<T>, current: Option<T>) -> Option<T> {
            p.apply(current)
        }
        pub use super::required::with_zone;
    }

    /// Not a fixed default: where a subtask goes depends on its siblings, which only the write
    /// sees (under its parent's lock). So a patch that leaves it out says nothing either, and the
    /// write keeps the stored value unless the task changes parent.
    pub mod placed {
        use super::*;
        pub fn whole<T>(p: Patch<T>, field: &'static str, errors: &mut Vec<Invalid>) -> Option<Option<T>> {
            if matches!(p, Patch::Null) {
                cannot_be_null(field, errors);
            }
            Some(p.apply(None))
        }
        pub fn merge<T>(p: Patch<T>, _: Option<T>) -> Option<T> {
            p.apply(None)
        }
        pub use super::required::{check, with_zone};
    }

    pub mod zone {
        use super::*;
        pub fn whole(
            p: Patch<TimeZone>,
            field: &'static str,
            errors: &mut Vec<Invalid>,
        ) -> Option<Option<TimeZone>> {
            if matches!(p, Patch::Null) {
                errors.push(Invalid::new(field, "cannot be null; leave it out for the default"));
            }
            Some(p.apply(None))
        }
        pub use super::required::{check, merge};
        pub fn with_zone(v: Option<TimeZone>, default: TimeZone) -> TimeZone {
            v.unwrap_or(default)
        }
    }
}

use kinds::{cleared, defaulted, nullable, placed, required, zone};
