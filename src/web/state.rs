use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;
use crate::web::actors::ActorRegistry;
use crate::web::auth::{PasswordHashing, TokenKeys};

/// Shared by every handler through `web::Data`.
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub tokens: TokenKeys,
    pub passwords: PasswordHashing,
    pub actors: Arc<ActorRegistry>,
}

impl AppState {
    pub fn new(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        Ok(Self {
            tokens: TokenKeys::new(&settings.auth),
            passwords: PasswordHashing::new(&settings.auth)?,
            actors: ActorRegistry::new(
                pool.clone(),
                settings.actors.clone(),
                settings.tasks.idempotency_ttl_hours,
            ),
            pool,
            settings: Arc::new(settings),
        })
    }
}
