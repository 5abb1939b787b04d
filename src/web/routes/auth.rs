//! Register, log in, log out.

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, post, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::commands::accounts;
use crate::db::users::{self, NewUser, User};
use crate::domain::{DisplayName, Email, Invalid, Password, TimeZone};
use crate::web::auth::{AuthUser, ClientIp, email_digest};
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::rate_limit;
use crate::web::request_id::RequestContext;
use crate::web::routes::shared::UserView;
use crate::web::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/auth")
            .wrap(from_fn(rate_limit::auth_by_ip))
            .service(register)
            .service(login)
            .service(logout),
    );
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024)]
    password: SecretString,
    name: Option<String>,
    /// IANA time zone; defaults to UTC.
    timezone: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    /// Always `bearer`.
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
    user: UserView,
}

impl TokenResponse {
    fn issue(state: &AppState, user: User) -> Result<Self, ApiError> {
        let issued = state.tokens.issue(user.id).map_err(ApiError::internal)?;
        Ok(Self {
            access_token: issued.token,
            token_type: "bearer",
            expires_in: issued.expires_in,
            user: user.into(),
        })
    }
}

struct Registration {
    email: Email,
    password: Password,
    name: Option<DisplayName>,
    timezone: TimeZone,
}

impl RegisterRequest {
    fn parse(self) -> Result<Registration, ApiError> {
        let email = Email::parse(&self.email);
        let password = Password::parse(self.password);
        let name = self.name.as_deref().map(DisplayName::parse).transpose();
        let timezone =
            self.timezone.as_deref().map_or(Ok(TimeZone::UTC), |tz| TimeZone::parse("timezone", tz));
        match (email, password, name, timezone) {
            (Ok(email), Ok(password), Ok(name), Ok(timezone)) => {
                Ok(Registration { email, password, name, timezone })
            }
            (email, password, name, timezone) => {
                let errors: Vec<Invalid> =
                    [email.err(), password.err(), name.err(), timezone.err()].into_iter().flatten().collect();
                Err(ApiError::invalid(errors))
            }
        }
    }
}

fn audit_ip_and_request(ip: &ClientIp) -> (String, String) {
    (ip.0.clone(), RequestContext::current().request_id)
}

/// Create an account
///
/// Creates an account and signs it in: the answer carries an access token, as `loginUser` gives.
/// The email must not be registered yet (`409 email_taken`); the password needs at least 8
/// characters; `timezone` is an IANA name and defaults to UTC. A verification email goes to the
/// address; until its link is followed, `email_verified` is false and no reminder is emailed.
#[utoipa::path(
    context_path = "/api/v1/auth", operation_id = "registerUser", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account, signed in", body = TokenResponse),
        (status = 409, description = "Email already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid email, password, name or timezone", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/register")]
#[tracing::instrument(skip_all)]
pub async fn register(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let registration = body.into_inner().parse()?;
    let hash = state.passwords.hash(registration.password).await?;
    let name = registration.name.map(DisplayName::into_inner);
    let new_user = NewUser {
        email: registration.email.as_str(),
        password_hash: &hash,
        name: name.as_deref(),
        timezone: registration.timezone.name(),
    };
    let limits = state.settings.email.verification_limits();
    let user = accounts::register(&state.pool, new_user, limits).await?;
    let (ip, request_id) = audit_ip_and_request(&ip);
    tracing::info!(target: "audit", event = "registered", user_id = %user.id, %ip, %request_id);
    Ok(HttpResponse::Created().json(TokenResponse::issue(&state, user)?))
}

/// Sign in with email and password
///
/// Exchanges email and password for an access token, valid for `expires_in` seconds. An unknown
/// email and a wrong password get the same `401 invalid_credentials`, so the answer does not say
/// which accounts exist. Attempts are rate-limited per client address.
#[utoipa::path(
    context_path = "/api/v1/auth", operation_id = "loginUser", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/login")]
#[tracing::instrument(skip_all)]
pub async fn login(
    state: web::Data<AppState>,
    ip: ClientIp,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.into_inner();
    if password.expose_secret().chars().count() > Password::MAX_CHARS {
        return Err(ApiError::field(
            "password",
            format!("must be at most {} characters", Password::MAX_CHARS),
        ));
    }
    // No stored email has control characters (registration refuses them), and PostgreSQL
    // refuses NUL outright, so such an email is simply unknown.
    let found = match email.chars().any(char::is_control) {
        true => None,
        false => users::find_credentials(&state.pool, email.trim()).await.map_err(ApiError::from_db)?,
    };
    let (user_id, stored_hash) = match found {
        Some((id, hash)) => (Some(id), hash),
        None => (None, None),
    };
    // Always verify, against a decoy when the email is unknown, so timing reveals nothing.
    let ok = state.passwords.verify(password.expose_secret().to_owned(), stored_hash).await?;
    let (ip, request_id) = audit_ip_and_request(&ip);
    let user_id = match (ok, user_id) {
        (true, Some(id)) => id,
        _ => {
            let email_hash = email_digest(&email);
            tracing::info!(target: "audit", event = "login_failed", %email_hash, %ip, %request_id);
            return Err(ApiError::Unauthorized { code: ProblemCode::InvalidCredentials });
        }
    };
    let user = users::find(&state.pool, user_id)
        .await
        .map_err(ApiError::from_db)?
        .ok_or(ApiError::Unauthorized { code: ProblemCode::InvalidCredentials })?;
    tracing::info!(target: "audit", event = "login_succeeded", user_id = %user.id, %ip, %request_id);
    Ok(HttpResponse::Ok().json(TokenResponse::issue(&state, user)?))
}

/// Revoke the token
///
/// Revokes the token this request presents, on every web process; it then gets `401
/// token_revoked`. Event streams opened with it end. Other tokens of the account stay valid.
#[utoipa::path(
    context_path = "/api/v1/auth", operation_id = "logoutUser", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Token revoked"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/logout")]
#[tracing::instrument(skip_all)]
pub async fn logout(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    // Keep the record through the leeway window, during which the token would still verify.
    let leeway = chrono::Duration::seconds(i64::try_from(state.settings.auth.leeway_secs).unwrap_or(0));
    let keep_until =
        user.expires_at.checked_add_signed(leeway).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    users::revoke_token(&state.pool, &user.token_id, keep_until).await.map_err(ApiError::from_db)?;
    // Other processes hear of it by NOTIFY; this one must not answer the token even once more.
    state.token_cache.forget_token(&user.token_id);
    let (ip, request_id) = audit_ip_and_request(&ip);
    tracing::info!(target: "audit", event = "logged_out", user_id = %user.id, %ip, %request_id);
    Ok(HttpResponse::NoContent().finish())
}
