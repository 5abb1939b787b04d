//! Authentication: login tokens (JWT), personal API tokens and their scopes, password hashing,
//! and the extractor every protected route takes.

pub mod api_auth;
pub mod api_token;
pub mod cache;
mod extractor;
pub mod password;
pub mod scope;
pub mod tokens;

pub use extractor::{AuthUser, ClientIp, bearer};
pub use password::PasswordHashing;
pub use tokens::TokenKeys;

use sha2::{Digest, Sha256};

/// A short digest of an email for audit logs: lets failures be correlated without storing the
/// address itself.
pub fn email_digest(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    format!("{digest:x}")[..16].to_owned()
}
