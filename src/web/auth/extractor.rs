use std::future::{Ready, ready};
use std::pin::Pin;

use actix_web::HttpMessage;
use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::scope::{self, Needs};
use super::tokens::{Subject, TokenError};
use super::{api_auth, api_token};
use crate::commands::accounts;
use crate::db::users::{self, ExternalIdentity, TokenStanding};
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

pub(super) fn unauthorized(code: ProblemCode) -> ApiError {
    ApiError::Unauthorized { code }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req).map(str::to_owned);
        let method = req.method().clone();
        // Only an API token's scopes depend on the route. Finding the route again walks the
        // resource map with a regex per pattern (a few per cent of a read's CPU), so a login
        // token skips it.
        let needs = match token.as_deref().is_some_and(api_token::looks_like_one) {
            true => scope::needs(&method, req.match_pattern().as_deref()),
            false => None,
        };
        let authenticated = req.extensions().get::<AuthUser>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            let token = token.ok_or(unauthorized(ProblemCode::TokenMissing))?;
            if api_token::looks_like_one(&token) {
                // Normally done already, by `api_auth::guard`, before any other extractor ran.
                if let Some(user) = authenticated {
                    return Ok(user);
                }
                return api_auth::authenticate(&state, &token, &method, needs.unwrap_or(Needs::Login)).await;
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
                    let limits = state.settings.email.verification_limits();
                    let id = accounts::resolve_external(&state.pool, identity, limits)
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

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    bearer(req.headers())
}

/// The credential of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
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
