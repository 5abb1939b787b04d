use serde::{Deserialize, Deserializer};

/// A field of a merge-patch body: left out, explicitly `null`, or a new value.
/// Use with `#[serde(default)]` so a missing field becomes `Absent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T> Patch<T> {
    /// The value after applying this patch to `current`.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Self::Absent => current,
            Self::Null => None,
            Self::Value(v) => Some(v),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Only called when the field is present; absence is handled by `#[serde(default)]`.
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Self::Null,
            Some(v) => Self::Value(v),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        name: Patch<String>,
    }

    #[test]
    fn distinguishes_absent_null_and_value() {
        let parse = |s: &str| serde_json::from_str::<Body>(s).unwrap().name;
        assert_eq!(parse("{}"), Patch::Absent);
        assert_eq!(parse(r#"{"name":null}"#), Patch::Null);
        assert_eq!(parse(r#"{"name":"x"}"#), Patch::Value("x".to_owned()));
    }
}
