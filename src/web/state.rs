use std::sync::Arc;

use sqlx::PgPool;

use crate::commands::CommandSettings;
use crate::config::Settings;
use crate::links::LinkKeys;
use crate::web::actors::ActorRegistry;
use crate::web::auth::cache::TokenCache;
use crate::web::auth::{PasswordHashing, TokenKeys};
use crate::web::events::Hub;
use crate::web::rate_limit::RateLimits;

/// Shared by every handler through `web::Data`.
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub tokens: TokenKeys,
    /// Opens the tokens of links in emails.
    pub links: LinkKeys,
    pub passwords: PasswordHashing,
    pub actors: Arc<ActorRegistry>,
    pub rate_limits: RateLimits,
    pub token_cache: Arc<TokenCache>,
    /// This process's open event streams.
    pub events: Arc<Hub>,
    /// Where reads go: the primary, or a replica that has caught up (see `reads`).
    pub reads: Arc<crate::web::reads::Reads>,
}

impl AppState {
    pub fn new(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let events = Hub::new(
            settings.sync.clone(),
            crate::db::side_pool(&settings.database, settings.sync.read_connections)?,
            crate::db::side_pool(&settings.database, 1)?,
        );
        Ok(Self {
            tokens: TokenKeys::new(&settings.auth),
            links: LinkKeys::new(&settings.auth),
            passwords: PasswordHashing::new(&settings.auth)?,
            actors: ActorRegistry::new(
                pool.clone(),
                settings.actors.clone(),
                CommandSettings::new(&settings),
                events.clone(),
            ),
            rate_limits: RateLimits::new(&settings.rate_limit),
            token_cache: TokenCache::new(settings.auth.token_cache_entries),
            events,
            reads: crate::web::reads::Reads::new(pool.clone(), &settings.database)?,
            pool,
            settings: Arc::new(settings),
        })
    }
}
