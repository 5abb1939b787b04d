//! argon2id hashing, run on the blocking pool so a burst of logins cannot stall the executor.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::AuthSettings;
use crate::domain::Password;

#[derive(Clone)]
pub struct PasswordHashing {
    argon2: Arc<Argon2<'static>>,
    /// A hash of a random password, verified against when the email is unknown so both
    /// failures take the same time.
    decoy_hash: Arc<str>,
}

impl PasswordHashing {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 settings: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let decoy = uuid::Uuid::new_v4().to_string();
        let decoy_hash = argon2
            .hash_password(decoy.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing the decoy password: {e}"))?
            .to_string();
        Ok(Self { argon2: Arc::new(argon2), decoy_hash: decoy_hash.into() })
    }

    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
        })
        .await?
    }

    /// Checks `password` against `stored`, or against the decoy when there is no stored hash.
    pub async fn verify(&self, password: String, stored: Option<String>) -> anyhow::Result<bool> {
        let argon2 = self.argon2.clone();
        let decoy = self.decoy_hash.clone();
        tokio::task::spawn_blocking(move || {
            let real = stored.is_some();
            let hash_text = stored.as_deref().unwrap_or(&decoy);
            let hash =
                PasswordHash::new(hash_text).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
            let matches = argon2.verify_password(password.as_bytes(), &hash).is_ok();
            Ok(real && matches)
        })
        .await?
    }
}
