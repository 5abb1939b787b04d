//! The secret of a personal API token: `todo_pat_` and 43 characters of base64url (32 random
//! bytes from the operating system's CSPRNG, 256 bits).
//!
//! The first 12 characters after the prefix are the token's *selector*, stored in the clear to
//! find its row; the SHA-256 digest of the whole token is stored and compared in constant time.
//! A fast hash suits a secret this random: guessing it is out of reach however fast the hash.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What secret scanners look for.
pub const PREFIX: &str = "todo_pat_";
const RANDOM_CHARS: usize = 43;
const SELECTOR_CHARS: usize = 12;

/// A freshly made token: the secret, shown once, and what is stored about it.
pub struct NewSecret {
    pub token: SecretString,
    pub selector: String,
    pub digest: Vec<u8>,
    /// The prefix and the last four characters, for lists.
    pub hint: String,
}

pub fn generate() -> NewSecret {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let random = URL_SAFE_NO_PAD.encode(bytes);
    let token = format!("{PREFIX}{random}");
    NewSecret {
        selector: random[..SELECTOR_CHARS].to_owned(),
        digest: digest(&token),
        hint: format!("{PREFIX}…{}", &random[RANDOM_CHARS - 4..]),
        token: SecretString::from(token),
    }
}

/// Whether a bearer credential is shaped as an API token (else it is taken for a JWT).
pub fn looks_like_one(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

/// The selector of a well-formed token; `None` for anything else.
pub fn selector(token: &str) -> Option<&str> {
    let random = token.strip_prefix(PREFIX)?;
    let well_formed = random.len() == RANDOM_CHARS
        && random.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| &random[..SELECTOR_CHARS])
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` is the one whose digest was stored, in time independent of where they differ.
pub fn matches(token: &str, stored_digest: &[u8]) -> bool {
    digest(token).ct_eq(stored_digest).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_token_is_prefixed_random_and_matches_only_itself() {
        let a = generate();
        let b = generate();
        let token = a.token.expose_secret();
        assert!(looks_like_one(token));
        assert_eq!(token.len(), PREFIX.len() + RANDOM_CHARS);
        assert_ne!(token, b.token.expose_secret());
        assert_eq!(selector(token), Some(a.selector.as_str()));
        assert!(matches(token, &a.digest));
        assert!(!matches(b.token.expose_secret(), &a.digest));
        assert!(a.hint.starts_with(PREFIX) && token.ends_with(&a.hint[a.hint.len() - 4..]));
    }

    #[test]
    fn malformed_tokens_have_no_selector() {
        assert_eq!(selector("todo_pat_short"), None);
        assert_eq!(selector(&format!("todo_pat_{}", "!".repeat(RANDOM_CHARS))), None);
        assert_eq!(selector("eyJhbGciOiJIUzI1NiJ9.e30.x"), None);
    }
}
