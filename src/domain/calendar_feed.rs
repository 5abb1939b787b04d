//! The rules for a calendar feed's fields.

use super::Invalid;

/// A feed's name, shown as the calendar's name in the subscribing app: 1–100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedName(String);

impl FeedName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        super::name(raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_name_is_trimmed_and_bounded() {
        assert_eq!(FeedName::parse("  Work ").unwrap().as_str(), "Work");
        assert_eq!(FeedName::parse(" ").unwrap_err().field, "name");
        assert_eq!(FeedName::parse(&"x".repeat(101)).unwrap_err().field, "name");
    }
}
