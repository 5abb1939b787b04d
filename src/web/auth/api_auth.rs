//! Authenticating a personal API token and checking its scope.
//!
//! `guard` runs as middleware on `/api/v1`, before routing hands the request to a handler, so a
//! token outside its scopes is refused before any other extractor looks at the body or query
//! (a malformed body must not answer 422 where the caller has no right to ask at all). It leaves
//! the caller in the request's extensions for the `AuthUser` extractor.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use chrono::{DateTime, Utc};

use super::extractor::{bearer, unauthorized};
use super::scope::{self, Needs};
use super::{AuthUser, api_token};
use crate::db::api_tokens;
use crate::domain::Scopes;
use crate::web::problem::{ApiError, ProblemCode};
use crate::web::state::AppState;

pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let token = bearer(req.headers()).filter(|t| api_token::looks_like_one(t)).map(str::to_owned);
    // The route is found again only for an API token: the walk costs a regex match per pattern.
    let needs = token.as_ref().and_then(|_| scope::needs(req.method(), req.match_pattern().as_deref()));
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // Public routes ignore credentials; unknown ones are left to answer 404 or 405.
    let (Some(token), Some(needs @ (Needs::Scope(_) | Needs::Login)), Some(state)) = (token, needs, state)
    else {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    match authenticate(&state, &token, &req.method().clone(), needs).await {
        Ok(user) => {
            req.extensions_mut().insert(user);
            next.call(req).await.map(ServiceResponse::map_into_left_body)
        }
        Err(err) => Ok(req.error_response(err).map_into_right_body()),
    }
}

/// The caller behind an API token, if it is good and carries the scope the route `needs`.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    method: &Method,
    needs: Needs,
) -> Result<AuthUser, ApiError> {
    let (user, scopes) = authenticate_scoped(state, token, Some(method)).await?;
    match needs {
        Needs::Scope(scope) if !scopes.contains(scope) => {
            Err(ApiError::InsufficientScope { needs: Some(scope) })
        }
        Needs::Scope(_) => Ok(user),
        Needs::Login | Needs::Public => Err(ApiError::InsufficientScope { needs: None }),
    }
}

/// The caller behind a good API token, and the scopes it carries: for doors that check a scope
/// per operation themselves (MCP checks one per tool). With a `method`, the request is counted
/// against the user's rate limits as a request of that method; without, the caller counts it.
pub async fn authenticate_scoped(
    state: &AppState,
    token: &str,
    method: Option<&Method>,
) -> Result<(AuthUser, Scopes), ApiError> {
    let selector = api_token::selector(token).ok_or(unauthorized(ProblemCode::TokenInvalid))?;
    let stored = api_tokens::find_by_selector(&state.pool, selector).await.map_err(ApiError::from_db)?;
    let stored = stored
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
    if let Some(method) = method {
        state.rate_limits.check_user(stored.user_id, method)?;
    }
    // At most one write a minute per token, however busy it is.
    let stale = stored.last_used_at.is_none_or(|at| now - at >= chrono::Duration::minutes(1));
    if stale && let Err(err) = api_tokens::touch(&state.pool, stored.user_id, stored.id).await {
        tracing::warn!(%err, "could not record an API token's use");
    }
    let user = AuthUser {
        id: stored.user_id,
        token_id: api_tokens::token_key(stored.id),
        expires_at: stored.expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
    };
    Ok((user, Scopes::from_stored(&stored.scopes)))
}
