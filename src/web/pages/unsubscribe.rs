//! `/email/unsubscribe`: the `List-Unsubscribe` URL of automated emails (RFC 8058). A mailbox
//! provider's one-click POST (`List-Unsubscribe=One-Click`, the token in the URL) turns that
//! kind of email off at once, with no login and no confirmation; a person following the link
//! from the body gets a page whose button does the same.
//!
//! The token is reusable: turning a kind of email off twice changes nothing, and a provider may
//! POST long after the email arrived or more than once. So it is never recorded as used, and
//! it lives a year (see `Purpose::Unsubscribe`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::Utc;

use super::{Form, Page, token_in};
use crate::commands::accounts::{self, AccountError};
use crate::db::users::ProfileChange;
use crate::links::{Claims, EmailKind, LinkError, Purpose};
use crate::web::state::AppState;

pub const PATH: &str = crate::links::paths::UNSUBSCRIBE;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(web::get().to(show))
            .route(web::post().to(unsubscribe))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// What the link would do. Changes nothing: mail scanners fetch every link.
#[tracing::instrument(skip_all)]
async fn show(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let token = token_in(req.query_string().as_bytes()).unwrap_or_default();
    match open(&state, &token) {
        Ok((_, kind)) => Page::new(StatusCode::OK, format!("Stop {}?", noun(kind)), &[])
            .with_paragraph(format!("Press the button to stop {} for your account.", noun(kind)))
            .with_form(Form { action: PATH, token, button: "Unsubscribe" }),
        Err(page) => page,
    }
}

/// The one-click POST and the page's button. The provider's POST carries the token in the URL
/// and `List-Unsubscribe=One-Click` in the body (form-encoded or multipart, as RFC 8058 allows);
/// the button carries it in the form. Either way the token alone authorizes the change.
#[tracing::instrument(skip_all)]
async fn unsubscribe(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Page {
    let token = token_in(req.query_string().as_bytes()).or_else(|| token_in(&body)).unwrap_or_default();
    let (claims, kind) = match open(&state, &token) {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let change = match kind {
        EmailKind::Reminders => ProfileChange { email_reminders: Some(false), ..ProfileChange::default() },
        EmailKind::Agenda => ProfileChange { agenda_time: Some(None), ..ProfileChange::default() },
    };
    // The account update `PATCH /users/me` runs; no address change, so no verification email.
    let limits = state.settings.email.verification_limits();
    match accounts::update_profile(&state.pool, claims.user_id, change, None, limits).await {
        Ok(_) => {
            let user_id = claims.user_id;
            tracing::info!(target: "audit", event = "unsubscribed", %user_id, kind = noun(kind));
            Page::new(StatusCode::OK, "You are unsubscribed", &[]).with_paragraph(format!(
                "We will send no more {}. You can turn them back on in the app's settings.",
                noun(kind)
            ))
        }
        Err(AccountError::AccountGone) => Page::new(
            StatusCode::GONE,
            "This account no longer exists",
            &["No more emails will be sent to it."],
        ),
        Err(AccountError::Database(err)) => Page::unavailable(err),
        Err(err) => {
            tracing::error!(error = %err, "unsubscribe failed");
            Page::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again in a moment",
                &["The service is busy or briefly unavailable. Nothing was changed."],
            )
        }
    }
}

fn open(state: &AppState, token: &str) -> Result<(Claims, EmailKind), Page> {
    let claims = state.links.open(token, Purpose::Unsubscribe, Utc::now()).map_err(Page::for_link_error)?;
    let kind = EmailKind::from_subject(&claims.subject).ok_or(Page::for_link_error(LinkError::Invalid))?;
    Ok((claims, kind))
}

fn noun(kind: EmailKind) -> &'static str {
    match kind {
        EmailKind::Reminders => "reminder emails",
        EmailKind::Agenda => "daily agenda emails",
    }
}
