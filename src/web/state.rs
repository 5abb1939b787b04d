use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;
use crate::web::auth::{PasswordHashing, TokenKeys};

/// Shared by every handler through `web::Data`.
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub tokens: TokenKeys,
    pub passwords: PasswordHashing,
}

impl AppState {
    pub fn new(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        Ok(Self {
            tokens: TokenKeys::new(&settings.auth),
            passwords: PasswordHashing::new(&settings.auth)?,
            pool,
            settings: Arc::new(settings),
        })
    }
}
