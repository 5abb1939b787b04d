//! Changing the caller's password. It takes a login token, never an API token, and ends every
//! API token of the account on every web process.

use actix_web::{HttpResponse, post, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::commands::accounts;
use crate::db::users;
use crate::domain::Password;
use crate::web::auth::{AuthUser, ClientIp};
use crate::web::json::Json;
use crate::web::problem::{ApiError, ProblemCode};
use crate::web::request_id::RequestContext;
use crate::web::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(change_password);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024)]
    new_password: SecretString,
}

/// Change the caller's password
///
/// Replaces the password after checking the current one (a wrong one is a `422` naming
/// `current_password`). Every personal API token of the account is revoked at once, on every
/// web process; sign-in tokens stay valid until they expire. Needs a login token.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "changePassword", tag = "users", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204, description = "Changed; the account's API tokens are revoked"))
)]
#[post("/users/me/password")]
#[tracing::instrument(skip_all)]
pub async fn change_password(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
    body: Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChange { current_password, new_password } = body.into_inner();
    if current_password.expose_secret().chars().count() > Password::MAX_CHARS {
        return Err(ApiError::field("current_password", "is not the account's password"));
    }
    let new_password =
        Password::parse(new_password).map_err(|e| ApiError::field("new_password", e.message))?;
    let gone = ApiError::Unauthorized { code: ProblemCode::TokenInvalid };
    let stored = users::password_hash(&state.pool, user.id).await.map_err(ApiError::from_db)?;
    let stored = stored.ok_or(gone)?;
    // An account without a password (an external issuer's) verifies against a decoy: false.
    if !state.passwords.verify(current_password.expose_secret().to_owned(), stored).await? {
        return Err(ApiError::field("current_password", "is not the account's password"));
    }
    let hash = state.passwords.hash(new_password).await?;
    let revoked = accounts::change_password(&state.pool, user.id, &hash)
        .await
        .map_err(ApiError::from_db)?
        .ok_or(ApiError::Unauthorized { code: ProblemCode::TokenInvalid })?;
    let request_id = RequestContext::current().request_id;
    tracing::info!(target: "audit", event = "password_changed", user_id = %user.id, api_tokens_revoked = revoked, ip = %ip.0, %request_id);
    Ok(HttpResponse::NoContent().finish())
}
