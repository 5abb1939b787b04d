use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use super::Invalid;

/// A trimmed email address, compared case-insensitively (the database indexes `lower(email)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim();
        let invalid = || Invalid::new("email", "must be an email address like name@example.com");
        if email.is_empty()
            || email.len() > Self::MAX_LEN
            || email.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        // The mailer builds the To header with lettre; an address it cannot parse would be
        // accepted here and then fail every reminder.
        if email.parse::<lettre::Address>().is_err() {
            return Err(invalid());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plaintext password that met the length rules. It never prints.
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Bounds hashing cost: argon2 time grows with input, and a megabyte password is an attack.
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: SecretString) -> Result<Self, Invalid> {
        let chars = raw.expose_secret().chars().count();
        if chars < Self::MIN_CHARS {
            return Err(Invalid::new("password", format!("must be at least {} characters", Self::MIN_CHARS)));
        }
        if chars > Self::MAX_CHARS {
            return Err(Invalid::new("password", format!("must be at most {} characters", Self::MAX_CHARS)));
        }
        Ok(Self(raw))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A person's display name: 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        super::name(raw, Self::MAX_CHARS).map(Self)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_checked() {
        assert_eq!(Email::parse("  Ann@Example.COM ").unwrap().as_str(), "Ann@Example.COM");
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "ann@exa..mple.com",
            "ann@.com",
            r#"a<b>"c@example.com"#,
            "a,b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn passwords_have_length_bounds_in_characters() {
        let p = |s: &str| Password::parse(SecretString::from(s));
        assert!(p("1234567").is_err());
        assert!(p("12345678").is_ok());
        assert!(p(&"é".repeat(1024)).is_ok(), "limits count characters, not bytes");
        assert!(p(&"x".repeat(1025)).is_err());
        assert_eq!(format!("{:?}", p("hunter2hunter2").unwrap()), "Password(***)");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ann ").unwrap().into_inner(), "Ann");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
    }
}
