//! Endpoint secrets and signatures, as Standard Webhooks defines them: a secret is
//! `whsec_<base64 of the key>`, and a signature is `v1,<base64 of HMAC-SHA256(key,
//! "{id}.{timestamp}.{body}")>`. Several signatures are separated by spaces.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// 256 bits: the specification asks for 24 to 64 bytes.
const KEY_BYTES: usize = 32;

/// A signing key. Its `Debug` never shows the bytes, so it cannot leak through a log.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = vec![0_u8; KEY_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as the owner is shown it, once.
    pub fn to_secret(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// One `v1,` signature of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per key, newest key first.
pub fn signature_header(keys: &[&SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter().map(|key| key.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks reference libraries' test suites.
    #[test]
    fn signs_as_the_reference_implementation_does() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = SigningKey::from_bytes(key);
        let signature = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_carry_the_prefix_and_a_fresh_key_each_time() {
        let (a, b) = (SigningKey::generate(), SigningKey::generate());
        assert_ne!(a, b);
        let secret = a.to_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&secret[6..]).unwrap(), a.as_bytes());
        assert_eq!(format!("{a:?}"), "SigningKey(..)");
        let both = signature_header(&[&a, &b], "msg_1", 1, b"{}");
        assert_eq!(both.split(' ').count(), 2);
    }
}
