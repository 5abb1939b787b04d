//! Opaque keyset cursors. A cursor carries the last row's sort key and id, and a fingerprint of
//! the query it belongs to (user, shelf, filters, sort), sealed with an HMAC so a client can
//! neither forge a position nor carry a cursor over to another query: either is a 400, never a
//! page of wrong rows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::task_list::{After, Key};

/// Longest cursor accepted; a title key is at most 200 characters, so real ones are far shorter.
const MAX_LEN: usize = 2048;
/// Bytes of the HMAC kept: 128 bits is beyond guessing.
const TAG_LEN: usize = 16;

#[derive(Serialize, Deserialize)]
struct Wire {
    /// The query's fingerprint.
    q: String,
    k: WireKey,
    i: Uuid,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", content = "v")]
enum WireKey {
    /// Microseconds since the epoch: PostgreSQL's own precision, so the position is exact.
    Time(i64),
    Due(Option<i64>),
    Rank(i16),
    Text(String),
    Relevance(f32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CursorError {
    #[error("the cursor is malformed or was altered")]
    Malformed,
    #[error("the cursor belongs to a different sort order or filter; start again without it")]
    OtherQuery,
}

pub struct Cursors<'a> {
    secret: &'a SecretString,
}

impl<'a> Cursors<'a> {
    pub fn new(secret: &'a SecretString) -> Self {
        Self { secret }
    }

    /// A short, stable digest of everything that decides which rows a query returns in which order.
    pub fn fingerprint(query: &str) -> String {
        hex(&Sha256::digest(query.as_bytes())[..12])
    }

    pub fn seal(&self, fingerprint: &str, after: &After) -> String {
        let k = match &after.key {
            Key::Time(at) => WireKey::Time(at.timestamp_micros()),
            Key::Due(at) => WireKey::Due(at.map(|at| at.timestamp_micros())),
            Key::Rank(rank) => WireKey::Rank(*rank),
            Key::Text(text) => WireKey::Text(text.clone()),
            Key::Relevance(rank) => WireKey::Relevance(*rank),
        };
        let body =
            serde_json::to_vec(&Wire { q: fingerprint.to_owned(), k, i: after.id }).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(body);
        let tag = URL_SAFE_NO_PAD.encode(&self.tag(body.as_bytes())[..TAG_LEN]);
        format!("{body}.{tag}")
    }

    pub fn open(&self, fingerprint: &str, cursor: &str) -> Result<After, CursorError> {
        if cursor.len() > MAX_LEN {
            return Err(CursorError::Malformed);
        }
        let (body, tag) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| CursorError::Malformed)?;
        if tag.len() != TAG_LEN {
            return Err(CursorError::Malformed);
        }
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_truncated_left(&tag).map_err(|_| CursorError::Malformed)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| CursorError::Malformed)?;
        let wire: Wire = serde_json::from_slice(&body).map_err(|_| CursorError::Malformed)?;
        if wire.q != fingerprint {
            return Err(CursorError::OtherQuery);
        }
        let time = |micros: i64| DateTime::from_timestamp_micros(micros).ok_or(CursorError::Malformed);
        let key = match wire.k {
            WireKey::Time(micros) => Key::Time(time(micros)?),
            WireKey::Due(micros) => Key::Due(micros.map(time).transpose()?),
            WireKey::Rank(rank) => Key::Rank(rank),
            WireKey::Text(text) => Key::Text(text),
            WireKey::Relevance(rank) => Key::Relevance(rank),
        };
        Ok(After { key, id: wire.i })
    }

    fn mac(&self) -> Hmac<Sha256> {
        // A key of its own, derived from the signing secret, so a cursor is never a token.
        let key = Sha256::new()
            .chain_update(b"todo list cursor v1")
            .chain_update(self.secret.expose_secret())
            .finalize();
        Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length")
    }

    fn tag(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> After {
        After { key: Key::Due(None), id: Uuid::nil() }
    }

    #[test]
    fn a_sealed_cursor_opens_only_for_its_own_query() {
        let secret = SecretString::from("a secret of some length for tests");
        let cursors = Cursors::new(&secret);
        let cursor = cursors.seal("q1", &sample());
        assert_eq!(cursors.open("q1", &cursor), Ok(sample()));
        assert_eq!(cursors.open("q2", &cursor), Err(CursorError::OtherQuery));
        let other_secret = SecretString::from("another secret");
        assert_eq!(Cursors::new(&other_secret).open("q1", &cursor), Err(CursorError::Malformed));
    }

    #[test]
    fn an_altered_cursor_is_refused() {
        let secret = SecretString::from("a secret of some length for tests");
        let cursors = Cursors::new(&secret);
        let cursor = cursors.seal("q1", &After { key: Key::Rank(2), id: Uuid::nil() });
        let (body, tag) = cursor.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap().replace("\"v\":2", "\"v\":3"),
        );
        assert_eq!(cursors.open("q1", &format!("{forged}.{tag}")), Err(CursorError::Malformed));
        for junk in ["", ".", "abc", "abc.def", &"x".repeat(5000)] {
            assert_eq!(cursors.open("q1", junk), Err(CursorError::Malformed), "{junk:?}");
        }
    }

    mod fuzz {
        //! The decoder takes whatever a client sends. `PROPTEST_CASES=100000 cargo test --lib fuzz`
        //! runs it longer than CI does.
        use proptest::prelude::*;

        use super::*;

        fn key() -> impl Strategy<Value = Key> {
            prop_oneof![
                (0i64..4_102_444_800_000_000)
                    .prop_map(|m| Key::Time(DateTime::from_timestamp_micros(m).unwrap())),
                proptest::option::of(0i64..4_102_444_800_000_000)
                    .prop_map(|m| Key::Due(m.map(|m| DateTime::from_timestamp_micros(m).unwrap()))),
                (1i16..=3).prop_map(Key::Rank),
                ".{0,200}".prop_map(Key::Text),
                (0f32..1.0).prop_map(Key::Relevance),
            ]
        }

        proptest! {
            #[test]
            fn any_text_is_refused_without_panicking(raw in any::<String>()) {
                let secret = SecretString::from("a secret of some length for tests");
                prop_assert!(Cursors::new(&secret).open("q", &raw).is_err());
            }

            #[test]
            fn a_sealed_cursor_opens_to_its_position_and_any_change_breaks_it(
                key in key(),
                id in any::<u128>(),
                at in any::<prop::sample::Index>(),
                byte in any::<u8>(),
            ) {
                let secret = SecretString::from("a secret of some length for tests");
                let cursors = Cursors::new(&secret);
                let after = After { key, id: Uuid::from_u128(id) };
                let sealed = cursors.seal("q", &after);
                prop_assert_eq!(cursors.open("q", &sealed), Ok(after));
                let mut bytes = sealed.clone().into_bytes();
                let i = at.index(bytes.len());
                prop_assume!(bytes[i] != byte);
                bytes[i] = byte;
                if let Ok(altered) = String::from_utf8(bytes) {
                    prop_assert!(cursors.open("q", &altered).is_err(), "{sealed} -> {altered}");
                }
            }
        }
    }
}
