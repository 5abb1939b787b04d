//! What a personal API token is allowed to do, and the rules for creating one.

use std::fmt;

use chrono::{DateTime, Months, Utc};

use super::Invalid;

/// One permission an API token can carry. A login (JWT) carries them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    TasksRead,
    TasksWrite,
    ProjectsRead,
    ProjectsWrite,
    Webhooks,
    Account,
}

impl Scope {
    pub const ALL: [Scope; 6] = [
        Scope::TasksRead,
        Scope::TasksWrite,
        Scope::ProjectsRead,
        Scope::ProjectsWrite,
        Scope::Webhooks,
        Scope::Account,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TasksRead => "tasks:read",
            Scope::TasksWrite => "tasks:write",
            Scope::ProjectsRead => "projects:read",
            Scope::ProjectsWrite => "projects:write",
            Scope::Webhooks => "webhooks",
            Scope::Account => "account",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of known scopes, de-duplicated and in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn parse(raw: &[String]) -> Result<Self, Invalid> {
        let mut scopes = Vec::with_capacity(raw.len());
        for name in raw {
            let scope = Scope::parse(name.trim()).ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                Invalid::new("scopes", format!("unknown scope {name:?}; known: {}", known.join(", ")))
            })?;
            scopes.push(scope);
        }
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(Invalid::new("scopes", "must name at least one scope"));
        }
        Ok(Self(scopes))
    }

    /// Scopes read back from the database; unknown names (from a newer version) are dropped,
    /// which only ever narrows what a token may do.
    pub fn from_stored(stored: &[String]) -> Self {
        let mut scopes: Vec<_> = stored.iter().filter_map(|s| Scope::parse(s)).collect();
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// Every scope: what a login may do.
    pub fn all() -> Self {
        Self(Scope::ALL.to_vec())
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

/// A token's name: 1–100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        super::name(raw, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When a token stops working: in the future, and at most a year ahead.
pub fn token_expiry(
    raw: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, Invalid> {
    let Some(at) = raw else { return Ok(None) };
    if at <= now {
        return Err(Invalid::new("expires_at", "must be in the future"));
    }
    let limit = now.checked_add_months(Months::new(12)).unwrap_or(DateTime::<Utc>::MAX_UTC);
    if at > limit {
        return Err(Invalid::new("expires_at", "must be at most one year ahead"));
    }
    Ok(Some(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn scopes_are_deduplicated_and_unknown_ones_refused() {
        let scopes = Scopes::parse(&strings(&["tasks:write", "tasks:read", "tasks:write"])).unwrap();
        assert_eq!(scopes.names(), ["tasks:read", "tasks:write"]);
        assert_eq!(Scopes::parse(&strings(&["tasks:delete"])).unwrap_err().field, "scopes");
        assert_eq!(Scopes::parse(&[]).unwrap_err().field, "scopes");
    }

    #[test]
    fn expiry_is_optional_future_and_within_a_year() {
        let now = Utc::now();
        assert_eq!(token_expiry(None, now), Ok(None));
        assert!(token_expiry(Some(now + Duration::days(365)), now).is_ok());
        assert_eq!(token_expiry(Some(now - Duration::seconds(1)), now).unwrap_err().field, "expires_at");
        assert_eq!(token_expiry(Some(now + Duration::days(367)), now).unwrap_err().field, "expires_at");
    }
}
