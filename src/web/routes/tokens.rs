//! Personal API tokens: create (the secret is shown once), list, revoke. Managing tokens takes a
//! login: an API token cannot mint or revoke tokens (these operations declare no `apiToken`
//! scope, see `auth::scope`).

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_tokens::{self as command, CreateError, MAX_LIVE_TOKENS};
use crate::db::api_tokens::{self, ApiToken, NewToken};
use crate::domain::{Scopes, TokenName, token_expiry};
use crate::web::auth::{AuthUser, ClientIp, api_token};
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::request_id::RequestContext;
use crate::web::routes::shared::keep;
use crate::web::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_token).service(list_tokens).service(delete_token);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// 1–100 characters, to tell tokens apart.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// What the token may do: one or more of `tasks:read`, `tasks:write`, `projects:read`,
    /// `projects:write`, `webhooks`, `account`. Repeats are ignored.
    #[schema(min_items = 1)]
    scopes: Vec<String>,
    /// When the token stops working: in the future, at most a year ahead. Left out, it works
    /// until revoked.
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
}

/// A new token, with its secret: the only answer that ever carries it.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// The secret, `todo_pat_` and 43 characters. Store it now: it is never shown again.
    token: String,
    id: Uuid,
    name: String,
    scopes: Vec<String>,
    /// The prefix and the last four characters, as `listTokens` shows them.
    hint: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    /// The caller's unrevoked tokens, expired ones included, oldest first.
    items: Vec<ApiToken>,
}

#[derive(Deserialize)]
struct TokenPath {
    id: Uuid,
}

/// Create a personal API token
///
/// Makes a token for scripts and integrations to send as `Authorization: Bearer todo_pat_…`. It
/// may call only the operations whose required scope it carries (each operation lists it under
/// `apiToken`); anything else answers `403 insufficient_scope`. The secret is in this answer
/// only: it is stored as a digest and cannot be shown again. An account holds at most 50 live
/// tokens (`409 token_limit_reached`). Needs a login token, not an API token.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "createToken", tag = "tokens", security(("bearer" = [])),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token, with its secret shown this once", body = CreatedToken),
        (status = 403, description = "`insufficient_scope`: an API token cannot manage tokens", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`token_limit_reached`: the account has 50 live tokens; revoke one first", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/tokens")]
#[tracing::instrument(skip_all)]
pub async fn create_token(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
    body: Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let TokenRequest { name, scopes, expires_at } = body.into_inner();
    let mut errors = Vec::new();
    let name = keep(&mut errors, TokenName::parse(&name));
    let scopes = keep(&mut errors, Scopes::parse(&scopes));
    let expires_at = keep(&mut errors, token_expiry(expires_at, Utc::now()));
    let (Some(name), Some(scopes), Some(expires_at)) = (name, scopes, expires_at) else {
        return Err(ApiError::invalid(errors));
    };
    let secret = api_token::generate();
    let scope_names = scopes.names();
    let new = NewToken {
        user_id: user.id,
        name: name.as_str(),
        scopes: &scope_names,
        selector: &secret.selector,
        digest: &secret.digest,
        hint: &secret.hint,
        expires_at,
    };
    let token = command::create(&state.pool, new).await.map_err(|err| match err {
        CreateError::LimitReached => ApiError::Conflict {
            code: ProblemCode::TokenLimitReached,
            detail: format!("An account holds at most {MAX_LIVE_TOKENS} live tokens; revoke one first."),
        },
        CreateError::AccountGone => ApiError::Unauthorized { code: ProblemCode::TokenInvalid },
        CreateError::Database(err) => ApiError::from_db(err),
    })?;
    let request_id = RequestContext::current().request_id;
    let scopes = scope_names.join(" ");
    tracing::info!(target: "audit", event = "api_token_created", user_id = %user.id, token_id = %token.id, %scopes, ip = %ip.0, %request_id);
    let created = CreatedToken {
        token: secret.token.expose_secret().to_owned(),
        id: token.id,
        name: token.name,
        scopes: token.scopes,
        hint: token.hint,
        created_at: token.created_at,
        expires_at: token.expires_at,
        last_used_at: token.last_used_at,
    };
    // The secret must not linger in a cache between here and the client.
    Ok(HttpResponse::Created().insert_header((header::CACHE_CONTROL, "no-store")).json(created))
}

/// List the caller's API tokens
///
/// Every unrevoked token of the caller, expired ones included, oldest first: name, scopes, a
/// hint (the prefix and last four characters), and when it was created, expires and was last
/// used (recorded at most once a minute). Secrets are never listed. Needs a login token.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "listTokens", tag = "tokens", security(("bearer" = [])),
    responses(
        (status = 200, body = TokenList),
        (status = 403, description = "`insufficient_scope`: an API token cannot manage tokens", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/tokens")]
#[tracing::instrument(skip_all)]
pub async fn list_tokens(state: web::Data<AppState>, user: AuthUser) -> Result<HttpResponse, ApiError> {
    let items = api_tokens::list(&state.pool, user.id).await.map_err(ApiError::from_db)?;
    Ok(HttpResponse::Ok().json(TokenList { items }))
}

/// Revoke an API token
///
/// Revokes the token on every web process within a second; it then answers `401
/// token_revoked`, and event streams opened with it end. Another user's token, or one already
/// revoked, is a 404. Needs a login token.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "deleteToken", tag = "tokens", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`insufficient_scope`: an API token cannot manage tokens", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/tokens/{id}")]
#[tracing::instrument(skip_all)]
pub async fn delete_token(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
    path: web::Path<TokenPath>,
) -> Result<HttpResponse, ApiError> {
    if !api_tokens::revoke(&state.pool, user.id, path.id).await.map_err(ApiError::from_db)? {
        return Err(ApiError::NotFound);
    }
    let request_id = RequestContext::current().request_id;
    tracing::info!(target: "audit", event = "api_token_revoked", user_id = %user.id, token_id = %path.id, ip = %ip.0, %request_id);
    Ok(HttpResponse::NoContent().finish())
}
