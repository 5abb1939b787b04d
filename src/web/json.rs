//! The JSON body extractor every route uses. It reads the body with actix's `web::Json` (so the
//! size limit, content-type check and error mapping of `extractors::json_config` apply) and adds
//! one rule serde_json leaves out: an object may name a key only once, at any depth.
//!
//! serde_json keeps the last of repeated keys when it builds a `Value`, while derived structs
//! refuse them; without this rule one body would mean different things on different routes. A
//! repeated key is a malformed body (400); a well-formed body of the wrong shape stays a 422.

use std::fmt;
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::extractors::data_error;

/// A JSON body with no repeated keys, deserialized into `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<UniqueKeys>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(UniqueKeys(value)) = body.await?;
            T::deserialize(value).map(Json).map_err(|err| data_error(&err).into())
        })
    }
}

/// Parses JSON text by the same rule, for doors that read a body themselves (MCP).
pub fn from_slice(body: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<UniqueKeys>(body).map(|UniqueKeys(value)| value)
}

/// Any JSON value, refused if an object in it repeats a key.
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key `{key}`")));
            }
            let UniqueKeys(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Value, String> {
        serde_json::from_str::<UniqueKeys>(text).map(|u| u.0).map_err(|e| e.to_string())
    }

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        for text in
            [r#"{"a": 1, "a": 2}"#, r#"{"list": [{"x": {"y": 1, "y": 1}}]}"#, r#"{"a": 1, "\u0061": 2}"#]
        {
            let err = parse(text).expect_err(text);
            assert!(err.starts_with("duplicate key"), "{text}: {err}");
        }
    }

    #[test]
    fn a_body_without_repeats_reads_as_serde_json_reads_it() {
        let text = r#"{"a": [1, -2, 3.5, "s", null, true, {}], "b": {"a": 18446744073709551615}}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }
}
