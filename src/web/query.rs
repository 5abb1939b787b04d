//! Query strings that handlers parse themselves, so that every mistake names its parameter: an
//! unknown or repeated parameter is a 400, a bad value a 422. The same rules hold on every route
//! that takes parameters, so a client never finds one that quietly keeps the last repeat.

use std::collections::BTreeMap;
use std::num::IntErrorKind;

use super::problem::ApiError;

/// The parameters as given, each name once unless it is listed as repeatable.
pub struct Params<'a>(BTreeMap<&'a str, Vec<&'a str>>);

impl<'a> Params<'a> {
    pub fn new(
        pairs: &'a [(String, String)],
        allowed: &[&str],
        repeatable: &[&str],
    ) -> Result<Self, ApiError> {
        let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "Unknown query parameter `{name}`; this route takes {}.",
                    allowed.join(", ")
                )));
            }
            let values = map.entry(name.as_str()).or_default();
            if !values.is_empty() && !repeatable.contains(&name.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "The query parameter `{name}` may be given only once."
                )));
            }
            values.push(value.as_str());
        }
        Ok(Self(map))
    }

    pub fn one(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).and_then(|values| values.first().copied())
    }

    pub fn all(&self, name: &str) -> Vec<&'a str> {
        self.0.get(name).cloned().unwrap_or_default()
    }
}

/// A whole number. Text that is not one is malformed (400). Digits beyond an `i64` are a value
/// out of range, not a malformed one: they saturate, so the caller's range check answers a 422
/// naming the parameter.
pub fn integer(params: &Params<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = params.one(name) else { return Ok(None) };
    match raw.trim().parse::<i64>() {
        Ok(n) => Ok(Some(n)),
        Err(err) if *err.kind() == IntErrorKind::PosOverflow => Ok(Some(i64::MAX)),
        Err(err) if *err.kind() == IntErrorKind::NegOverflow => Ok(Some(i64::MIN)),
        Err(_) => Err(ApiError::BadRequest(format!("The query parameter `{name}` must be an integer."))),
    }
}

/// A parameter that must be a whole number in `min..=max`: anything else is a 422 naming it.
pub fn integer_in(params: &Params<'_>, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    params
        .one(name)
        .map(|value| {
            value
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| ApiError::field(name, format!("must be a whole number from {min} to {max}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn unknown_and_repeated_names_are_refused_unless_repeatable() {
        let given = pairs(&[("a", "1"), ("b", "2"), ("b", "3")]);
        assert!(Params::new(&given, &["a"], &[]).is_err());
        assert!(Params::new(&given, &["a", "b"], &[]).is_err());
        let params = Params::new(&given, &["a", "b"], &["b"]).unwrap();
        assert_eq!(params.all("b"), ["2", "3"]);
        assert_eq!(params.one("a"), Some("1"));
    }

    #[test]
    fn integers_past_i64_saturate_and_words_are_malformed() {
        let given =
            pairs(&[("big", "99999999999999999999"), ("small", "-99999999999999999999"), ("w", "ten")]);
        let params = Params::new(&given, &["big", "small", "w"], &[]).unwrap();
        assert_eq!(integer(&params, "big").unwrap(), Some(i64::MAX));
        assert_eq!(integer(&params, "small").unwrap(), Some(i64::MIN));
        assert!(integer(&params, "w").is_err());
        assert_eq!(integer(&params, "absent").unwrap(), None);
    }
}
