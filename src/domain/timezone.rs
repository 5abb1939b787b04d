use super::Invalid;

/// An IANA time zone name such as `Europe/Paris`, checked against the tz database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub const UTC: Self = Self(chrono_tz::Tz::UTC);

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        raw.trim().parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            Invalid::new(field, format!("{raw:?} is not an IANA time zone name such as Europe/Paris"))
        })
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_iana_names_and_rejects_others() {
        assert_eq!(TimeZone::parse("timezone", "Europe/Paris").unwrap().name(), "Europe/Paris");
        assert!(TimeZone::parse("timezone", "Mars/Olympus").is_err());
        assert!(TimeZone::parse("timezone", "").is_err());
    }
}
