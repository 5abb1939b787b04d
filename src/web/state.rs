use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;

/// Shared by every handler through `web::Data`.
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
}
