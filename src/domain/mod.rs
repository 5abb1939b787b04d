//! Domain values that can only be built through `parse`, so code past the edge never sees a
//! value that breaks a rule.

mod account;
mod patch;
mod timezone;

pub use account::{DisplayName, Email, Password};
pub use patch::Patch;
pub use timezone::TimeZone;

/// A value that broke a rule, naming the field as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}
