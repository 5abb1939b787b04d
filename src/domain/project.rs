//! A project's own values: its name and color.

use super::Invalid;

/// 1–100 characters after trimming, no control characters. Unique per user, ignoring case (the
/// database's unique index on `lower(name)` decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        super::name(raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `#rrggbb` color, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Color(String);

impl Color {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let hex = raw.strip_prefix('#').filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()));
        match hex {
            Some(hex) => Ok(Self(format!("#{}", hex.to_ascii_lowercase()))),
            None => Err(Invalid::new("color", "must be a #rrggbb color such as #1e90ff")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a project sorts among the user's projects, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position(i32);

impl Position {
    pub const MAX: i32 = 1_000_000;

    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        i32::try_from(raw)
            .ok()
            .filter(|p| (0..=Self::MAX).contains(p))
            .map(Self)
            .ok_or_else(|| Invalid::new("position", format!("must be 0–{}", Self::MAX)))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProjectName::parse("  Work ").unwrap().as_str(), "Work");
        assert!(ProjectName::parse(" ").is_err());
        assert!(ProjectName::parse(&"x".repeat(101)).is_err());
        assert!(ProjectName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn colors_are_hex_triplets_stored_lower_case() {
        assert_eq!(Color::parse("#1E90FF").unwrap().as_str(), "#1e90ff");
        for bad in ["1e90ff", "#1e90f", "#1e90ffa", "#gggggg", "red", ""] {
            assert!(Color::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positions_are_bounded() {
        assert_eq!(Position::parse(3).unwrap().get(), 3);
        assert!(Position::parse(-1).is_err());
        assert!(Position::parse(i64::from(Position::MAX) + 1).is_err());
    }
}
