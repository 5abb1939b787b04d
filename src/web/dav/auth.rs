//! Who is calling a DAV address. Calendar clients ask for a user name and a password: the
//! account's email and an API token (an app password). A Bearer header, API token or login, is
//! taken too. Wrong credentials get 401 with a Basic challenge, and count against the caller's
//! address like failed logins do (429 past the limit); the user's rate limits apply as on the API.

use actix_web::dev::Payload;
use actix_web::http::header::{self, AUTHORIZATION};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use base64::Engine as _;
use uuid::Uuid;

use super::plain;
use crate::db::users;
use crate::domain::{Scope, Scopes};
use crate::web::auth::{AuthUser, api_auth, api_token, bearer};
use crate::web::problem::ApiError;
use crate::web::state::AppState;

const CHALLENGE: &str = "Basic realm=\"todo\", charset=\"UTF-8\"";

#[derive(Debug, Clone)]
pub struct Caller {
    pub id: Uuid,
    pub email: String,
    pub scopes: Scopes,
    /// Where this request's reads go: a replica for a read that presents a `Consistency-Token`
    /// it has replayed, otherwise the primary (always, for a write).
    pub reads: sqlx::PgPool,
}

impl Caller {
    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }
}

/// The caller, or the answer that refuses them.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Caller, HttpResponse> {
    // PROPFIND and REPORT read; the user's read budget counts them.
    let budget = match req.method().as_str() {
        "GET" | "HEAD" | "PROPFIND" | "REPORT" => Method::GET,
        _ => Method::POST,
    };
    // An address already over the failed-login limit is refused before its credentials are
    // checked: checking them would let it keep guessing (and cost a token lookup per guess).
    if let Some(peer) = req.peer_addr()
        && let Err(err) = state.rate_limits.auth_ip_refused(peer.ip())
    {
        return Err(err.error_response());
    }
    let result = match credentials(req) {
        Credentials::Basic { user, password } => basic(state, &user, &password, &budget).await,
        Credentials::Bearer(token) if api_token::looks_like_one(&token) => {
            match api_auth::authenticate_scoped(state, &token, Some(&budget)).await {
                Ok((user, scopes)) => caller(state, user.id, scopes).await,
                Err(err) => Err(err),
            }
        }
        Credentials::Bearer(_) => match AuthUser::from_request(req, &mut Payload::None).await {
            // A login may do whatever the account may.
            Ok(user) => caller(state, user.id, Scopes::all()).await,
            Err(err) => Err(err),
        },
        Credentials::None => return Err(challenge("Sign in with your email and an API token.")),
    };
    match result {
        Ok(caller) => {
            tracing::Span::current().record("user_id", tracing::field::display(caller.id));
            Ok(caller)
        }
        Err(ApiError::Unauthorized { .. }) => Err(refused(req, state)),
        Err(other) => Err(other.error_response()),
    }
}

enum Credentials {
    Basic { user: String, password: String },
    Bearer(String),
    None,
}

fn credentials(req: &HttpRequest) -> Credentials {
    if let Some(token) = bearer(req.headers()) {
        return Credentials::Bearer(token.to_owned());
    }
    let basic = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    match basic.as_deref().and_then(|pair| pair.split_once(':')) {
        Some((user, password)) => Credentials::Basic { user: user.to_owned(), password: password.to_owned() },
        None => Credentials::None,
    }
}

/// The email and an API token of that account.
async fn basic(state: &AppState, email: &str, password: &str, budget: &Method) -> Result<Caller, ApiError> {
    let unauthorized = || ApiError::Unauthorized { code: crate::web::problem::ProblemCode::TokenInvalid };
    if !api_token::looks_like_one(password) {
        return Err(unauthorized());
    }
    let (user, scopes) = api_auth::authenticate_scoped(state, password, Some(budget)).await?;
    let caller = caller(state, user.id, scopes).await?;
    // The token decides who it is; the name must agree, so a token pasted under the wrong account
    // is refused rather than silently used.
    match caller.email.eq_ignore_ascii_case(email.trim()) {
        true => Ok(caller),
        false => Err(unauthorized()),
    }
}

async fn caller(state: &AppState, id: Uuid, scopes: Scopes) -> Result<Caller, ApiError> {
    let user = users::find(&state.pool, id).await.map_err(ApiError::from_db)?;
    let user = user.ok_or(ApiError::Unauthorized { code: crate::web::problem::ProblemCode::TokenInvalid })?;
    Ok(Caller { id, email: user.email.unwrap_or_default(), scopes, reads: state.pool.clone() })
}

/// Wrong credentials: a challenge, or 429 once the address has failed too often.
fn refused(req: &HttpRequest, state: &AppState) -> HttpResponse {
    if let Some(peer) = req.peer_addr()
        && let Err(err) = state.rate_limits.check_auth_ip(peer.ip())
    {
        return err.error_response();
    }
    challenge("The email or the API token is wrong, or the token was revoked or has expired.")
}

fn challenge(text: &str) -> HttpResponse {
    let mut response = plain(StatusCode::UNAUTHORIZED, text);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(CHALLENGE));
    response
}

/// 403 for a token without the scope an operation needs.
pub fn lacks(scope: Scope) -> HttpResponse {
    super::condition(
        StatusCode::FORBIDDEN,
        "<d:need-privileges/>",
        &format!("This API token lacks the {} scope.", scope.as_str()),
    )
}
