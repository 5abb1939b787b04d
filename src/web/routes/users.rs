//! The caller's own account: profile, export and deletion.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::Command;
use crate::commands::accounts;
use crate::db::projects::{self, Project};
use crate::db::tasks::{self, Task};
use crate::db::users::{self, ProfileChange};
use crate::domain::{AgendaTime, DisplayName, Email, Invalid, Patch, TimeZone};
use crate::web::auth::{AuthUser, ClientIp};
use crate::web::json::Json;
use crate::web::problem::{ApiError, Problem, ProblemCode};
use crate::web::reads::ReadPool;
use crate::web::request_id::RequestContext;
use crate::web::routes::shared::{UserView, keep};
use crate::web::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(me).service(update_me).service(delete_me).service(export).service(resend_verification);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// A new display name, or `null` to clear it.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    name: Patch<String>,
    /// IANA time zone name.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    timezone: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    email_reminders: Patch<bool>,
    /// A new address. It takes effect once the link emailed to it is followed; until then it is
    /// `pending_email`, and reminders keep going to the current (verified) address.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Email)]
    email: Patch<String>,
    /// The local time of the daily agenda email, `HH:MM` (24-hour) in the account's time zone,
    /// or `null` to turn it off. Changing it, or `timezone`, queues the next agenda.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$", example = "07:30")]
    agenda_time: Patch<String>,
}

/// A parsed profile update: the columns it sets, and the address it asks to change to.
struct ProfileRequest {
    change: ProfileChange,
    email: Option<Email>,
}

impl ProfileUpdate {
    fn parse(self) -> Result<ProfileRequest, ApiError> {
        let mut errors = Vec::new();
        let email = match self.email {
            Patch::Absent => None,
            Patch::Null => keep(&mut errors, Err(Invalid::new("email", "cannot be null"))),
            Patch::Value(raw) => keep(&mut errors, Email::parse(&raw)),
        };
        let name = match self.name {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(raw) => keep(&mut errors, DisplayName::parse(&raw)).map(|n| Some(n.into_inner())),
        };
        let timezone = match self.timezone {
            Patch::Absent => None,
            Patch::Null => keep(&mut errors, Err(Invalid::new("timezone", "cannot be null"))),
            Patch::Value(raw) => {
                keep(&mut errors, TimeZone::parse("timezone", &raw)).map(|tz| tz.name().to_owned())
            }
        };
        let email_reminders = match self.email_reminders {
            Patch::Absent => None,
            Patch::Null => keep(&mut errors, Err(Invalid::new("email_reminders", "cannot be null"))),
            Patch::Value(on) => Some(on),
        };
        let agenda_time = match self.agenda_time {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(raw) => {
                keep(&mut errors, AgendaTime::parse("agenda_time", &raw)).map(|t| Some(t.time()))
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::invalid(errors));
        }
        let change = ProfileChange { name, timezone, email_reminders, agenda_time };
        Ok(ProfileRequest { change, email })
    }
}

/// Get the caller's account
///
/// The account the presented token belongs to: id, email, name, time zone, whether reminder
/// emails are on, whether the email is verified, any address change waiting for verification,
/// and the local time of the daily agenda email.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "getCurrentUser", tag = "users", security(("bearer" = []), ("apiToken" = ["account"])),
    responses((status = 200, body = UserView), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/users/me")]
#[tracing::instrument(skip_all)]
pub async fn me(state: web::Data<AppState>, user: AuthUser) -> Result<web::Json<UserView>, ApiError> {
    let found = users::find(&state.pool, user.id).await.map_err(ApiError::from_db)?;
    Ok(web::Json(found.ok_or(ApiError::Unauthorized { code: ProblemCode::TokenInvalid })?.into()))
}

/// Update the caller's account
///
/// Changes `name`, `timezone`, `email_reminders`, `agenda_time` or `email`. Left-out fields stay
/// as they are; `null` clears `name` and turns the daily agenda off. A new time zone applies to
/// tasks created afterwards, and to the agenda from its next day (one agenda per local day). A new `email` is
/// not applied at once: a verification email goes to it, the answer shows it as `pending_email`,
/// and it replaces `email` when its link is followed. An address another account has is a
/// `409 email_taken`; too many verification emails in an hour, a `429`.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "updateCurrentUser", tag = "users", security(("bearer" = []), ("apiToken" = ["account"])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The account, with any new address as `pending_email`", body = UserView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`: another account has this address", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many verification emails for this account or address this hour; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/users/me")]
#[tracing::instrument(skip_all)]
pub async fn update_me(
    state: web::Data<AppState>,
    user: AuthUser,
    body: Json<ProfileUpdate>,
) -> Result<web::Json<UserView>, ApiError> {
    let ProfileRequest { change, email } = body.into_inner().parse()?;
    let email = email.as_ref().map(Email::as_str);
    let limits = state.settings.email.verification_limits();
    let updated = accounts::update_profile(&state.pool, user.id, change, email, limits).await?;
    Ok(web::Json(updated.into()))
}

/// Send the verification email again
///
/// Queues another verification email for the address that awaits one: the `pending_email` if an
/// address change waits, else an unverified `email`. Its link works once, within 48 hours; older
/// links keep working until then. At most `verification_per_hour` (5 by default) verification
/// emails per account per hour, registration and address changes included, and at most
/// `verification_per_recipient_per_hour` (5) to one address from all accounts; past either,
/// `429` with `Retry-After`. An account whose address is verified and has no change waiting gets
/// `409 nothing_to_verify`.
#[utoipa::path(
    post, path = "/users/me/verification",
    context_path = "/api/v1", operation_id = "resendVerification", tag = "users", security(("bearer" = []), ("apiToken" = ["account"])),
    responses(
        (status = 202, description = "A verification email is queued"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`nothing_to_verify`: the address is verified and no change waits", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many verification emails for this account or address this hour; see `Retry-After`", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/me/verification")]
#[tracing::instrument(skip_all)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    accounts::resend(&state.pool, user.id, state.settings.email.verification_limits()).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// Delete the caller's account
///
/// Deletes the account, its projects, its tasks and its queued reminders, in one transaction. The
/// token stops working at once. This cannot be undone.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "deleteCurrentUser", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "Account deleted"), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[delete("/users/me")]
#[tracing::instrument(skip_all)]
pub async fn delete_me(
    state: web::Data<AppState>,
    ip: ClientIp,
    user: AuthUser,
) -> Result<HttpResponse, ApiError> {
    // Through the actor: removing the account is a write to all of the user's tasks.
    state.actors.execute(user.id, Command::DeleteAccount).await?;
    state.token_cache.forget_user(user.id);
    let request_id = RequestContext::current().request_id;
    tracing::info!(target: "audit", event = "account_deleted", user_id = %user.id, ip = %ip.0, %request_id);
    Ok(HttpResponse::NoContent().finish())
}

/// The export's shape, for the OpenAPI document; the body itself is streamed.
#[derive(Serialize, ToSchema)]
pub struct Export {
    exported_at: DateTime<Utc>,
    user: UserView,
    projects: Vec<Project>,
    /// Every task, trashed ones included.
    tasks: Vec<Task>,
}

/// Tasks read per query while streaming an export: memory stays at one page however many tasks
/// there are, and no database connection is held while the client reads.
const EXPORT_PAGE: i64 = 200;

/// Export everything stored about the caller
///
/// Every stored fact about the caller as one JSON document: the account, its projects and every
/// task, trashed ones included (the GDPR right of access). The body is streamed, so an account of
/// any size exports in bounded memory.
#[utoipa::path(
    context_path = "/api/v1", operation_id = "exportCurrentUser", tag = "users", security(("bearer" = []), ("apiToken" = ["account"])),
    responses((status = 200, description = "The export, streamed", body = Export, headers(("Content-Disposition" = String, description = "`attachment`, with a file name holding the date"))), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/users/me/export")]
#[tracing::instrument(skip_all)]
pub async fn export(user: AuthUser, reads: ReadPool) -> Result<HttpResponse, ApiError> {
    let found = users::find(&reads.0, user.id).await.map_err(ApiError::from_db)?;
    let user = found.ok_or(ApiError::Unauthorized { code: ProblemCode::TokenInvalid })?;
    let user_id = user.id;
    // At most a thousand, so they come in the head; tasks stream after them.
    let projects = projects::list(&reads.0, user_id, None).await.map_err(ApiError::from_db)?;
    // Everything before the task array, as `{"exported_at":…,"user":{…},"projects":[…],"tasks":[`.
    let head =
        serde_json::json!({ "exported_at": Utc::now(), "user": UserView::from(user), "projects": projects });
    let mut head = serde_json::to_vec(&head).map_err(ApiError::internal)?;
    head.pop();
    head.extend_from_slice(br#","tasks":["#);
    let pool = reads.0;
    let pages = futures_util::stream::unfold(ExportCursor::Head(head), move |cursor| {
        let pool = pool.clone();
        async move { cursor.next(&pool, user_id).await }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("content-disposition", "attachment; filename=\"todo-export.json\""))
        .streaming(pages))
}

/// Where a streaming export has got to.
enum ExportCursor {
    Head(Vec<u8>),
    After { last: Option<(DateTime<Utc>, Uuid)> },
    Done,
}

impl ExportCursor {
    async fn next(self, pool: &sqlx::PgPool, user: Uuid) -> Option<(Result<web::Bytes, ApiError>, Self)> {
        match self {
            Self::Head(head) => Some((Ok(head.into()), Self::After { last: None })),
            Self::After { last } => {
                let page = match tasks::export_page(pool, user, last, EXPORT_PAGE).await {
                    Ok(page) => page,
                    // The status line is sent: all that is left is to cut the body short, which
                    // the client sees as a broken download rather than a complete export.
                    Err(err) => {
                        tracing::error!(%err, "export interrupted");
                        return Some((Err(ApiError::from_db(err)), Self::Done));
                    }
                };
                let mut chunk = Vec::with_capacity(page.len() * 512);
                for (i, task) in page.iter().enumerate() {
                    if last.is_some() || i > 0 {
                        chunk.push(b',');
                    }
                    if let Err(err) = serde_json::to_writer(&mut chunk, task) {
                        return Some((Err(ApiError::internal(err)), Self::Done));
                    }
                }
                let next = match page.last() {
                    Some(task) if page.len() as i64 == EXPORT_PAGE => {
                        Self::After { last: Some((task.created_at, task.id)) }
                    }
                    _ => {
                        chunk.extend_from_slice(b"]}");
                        Self::Done
                    }
                };
                Some((Ok(chunk.into()), next))
            }
            Self::Done => None,
        }
    }
}
