use std::future::{Ready, ready};
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::api_token;
use super::scope::{self, Needs};
use super::tokens::{Subject, TokenError};
use crate::commands::accounts;
use crate::db::api_tokens::{self, StoredToken};
use crate::db::users::{self, ExternalIdentity, TokenStanding};
use crate::domain::Scopes;
use crate::web::problem::{ApiError, ProblemCode};
use crate::web::state::AppState;

/// The authenticated caller. Taking it as a handler argument is what makes a route protected:
/// the handler cannot run without a valid, unrevoked token for a user that exists.
///
/// The token is a login (JWT), which may do anything the account may, or a personal API token
/// (`todo_pat_…`), which may call only the routes whose declared scope it carries (see
/// `auth::scope`).
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    /// The JWT's `jti`, or `pat:<id>` for an API token: the key revocation names it by.
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
}

fn unauthorized(code: ProblemCode) -> ApiError {
    ApiError::Unauthorized { code }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        let method = req.method().clone();
        let needs = scope::needs(&method, req.match_pattern().as_deref());
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            let token = token.ok_or(unauthorized(ProblemCode::TokenMissing))?;
            if api_token::looks_like_one(&token) {
                return api_token_user(&state, &token, &method, needs).await;
            }
            let verified = state.tokens.verify(&token).map_err(|e| match e {
                TokenError::Expired => unauthorized(ProblemCode::TokenExpired),
                TokenError::Invalid => unauthorized(ProblemCode::TokenInvalid),
            })?;
            let id = match verified.subject {
                // Counted before the database is asked anything, so a flood costs it nothing.
                Subject::User(id) => {
                    state.rate_limits.check_user(id, &method)?;
                    id
                }
                Subject::External { external_id, email, email_verified, issued_at } => {
                    let identity = ExternalIdentity {
                        external_id: &external_id,
                        email: email.as_deref(),
                        email_verified,
                        issued_at,
                    };
                    let limit = state.settings.email.verification_per_hour;
                    let id = accounts::resolve_external(&state.pool, identity, limit)
                        .await?
                        // Deleted after this token was issued: the deletion stands.
                        .ok_or(unauthorized(ProblemCode::TokenRevoked))?;
                    state.rate_limits.check_user(id, &method)?;
                    id
                }
            };
            if !state.token_cache.is_good(&verified.token_id, id) {
                let generation = state.token_cache.generation();
                match users::token_standing(&state.pool, id, &verified.token_id)
                    .await
                    .map_err(ApiError::from_db)?
                {
                    TokenStanding::Good => {
                        state.token_cache.remember(generation, &verified.token_id, id, verified.expires_at);
                    }
                    TokenStanding::Revoked => return Err(unauthorized(ProblemCode::TokenRevoked)),
                    TokenStanding::UnknownUser => return Err(unauthorized(ProblemCode::TokenInvalid)),
                }
            }
            tracing::Span::current().record("user_id", tracing::field::display(id));
            Ok(Self { id, token_id: verified.token_id, expires_at: verified.expires_at })
        })
    }
}

/// Authenticates a personal API token and checks it carries the scope the route needs.
async fn api_token_user(
    state: &AppState,
    token: &str,
    method: &actix_web::http::Method,
    needs: Needs,
) -> Result<AuthUser, ApiError> {
    let selector = api_token::selector(token).ok_or(unauthorized(ProblemCode::TokenInvalid))?;
    let stored = api_tokens::find_by_selector(&state.pool, selector).await.map_err(ApiError::from_db)?;
    let stored: StoredToken = stored
        .filter(|stored| api_token::matches(token, &stored.digest))
        .ok_or(unauthorized(ProblemCode::TokenInvalid))?;
    if stored.revoked {
        return Err(unauthorized(ProblemCode::TokenRevoked));
    }
    let now = Utc::now();
    if stored.expires_at.is_some_and(|at| at <= now) {
        return Err(unauthorized(ProblemCode::TokenExpired));
    }
    tracing::Span::current().record("user_id", tracing::field::display(stored.user_id));
    // A token's requests are its user's: they share one budget, refused ones included.
    state.rate_limits.check_user(stored.user_id, method)?;
    match needs {
        Needs::Login => return Err(ApiError::InsufficientScope { needs: None }),
        Needs::Scope(scope) if !Scopes::from_stored(&stored.scopes).contains(scope) => {
            return Err(ApiError::InsufficientScope { needs: Some(scope) });
        }
        Needs::Scope(_) => {}
    }
    // At most one write a minute per token, however busy it is.
    if stored.last_used_at.is_none_or(|at| now - at >= chrono::Duration::minutes(1)) {
        if let Err(err) = api_tokens::touch(&state.pool, stored.id).await {
            tracing::warn!(%err, "could not record an API token's use");
        }
    }
    Ok(AuthUser {
        id: stored.user_id,
        token_id: api_tokens::token_key(stored.id),
        expires_at: stored.expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
    })
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The caller's IP as seen on the socket. Forwarded headers are not trusted: a client could
/// forge them to hide from the audit log.
#[derive(Debug, Clone)]
pub struct ClientIp(pub String);

impl FromRequest for ClientIp {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let ip = req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
        ready(Ok(Self(ip)))
    }
}
