//! Domain values that can only be built through `parse`, so code past the edge never sees a
//! value that breaks a rule.

use std::borrow::Cow;

mod account;
mod agenda;
mod api_token;
mod calendar_feed;
pub mod fields;
#[cfg(test)]
mod fuzz;
mod patch;
mod project;
pub mod recurrence;
mod task;
mod timezone;
mod view;

pub use account::{DisplayName, Email, Password};
pub use agenda::AgendaTime;
pub use api_token::{Scope, Scopes, TokenName, token_expiry};
pub use calendar_feed::FeedName;
pub use fields::{TaskChanges, TaskFields};
pub use patch::Patch;
pub use project::{Color, Position, ProjectName};
pub use task::{
    Description, LateReminder, Priority, RecurrenceAnchor, RecurrenceRule, Tags, Title, check_instant,
};
pub use timezone::TimeZone;
pub use view::Task;

/// A value that broke a rule, naming the field as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: Cow<'static, str>,
    pub message: String,
}

/// A `name` field: trimmed, 1–`max_chars` characters, no control characters.
fn name(raw: &str, max_chars: usize) -> Result<String, Invalid> {
    let name = raw.trim();
    match name.chars().count() {
        0 => Err(Invalid::new("name", "must not be blank")),
        n if n > max_chars => Err(Invalid::new("name", format!("must be at most {max_chars} characters"))),
        _ if name.chars().any(char::is_control) => {
            Err(Invalid::new("name", "must not contain control characters"))
        }
        _ => Ok(name.to_owned()),
    }
}

impl Invalid {
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}
