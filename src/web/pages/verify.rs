//! `/email/verify`: the link in a verification email. GET shows the address and a button;
//! the button's POST verifies it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::Utc;

use super::{Form, Page, is_form, not_a_form, token_in};
use crate::commands::accounts::{self, LinkTarget, Verified};
use crate::links::{Claims, Purpose};
use crate::web::auth::ClientIp;
use crate::web::request_id::RequestContext;
use crate::web::state::AppState;

const PATH: &str = crate::links::paths::VERIFY;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(web::get().to(show))
            .route(web::post().to(confirm))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// What the link would do. Changes nothing: mail scanners fetch every link.
#[tracing::instrument(skip_all)]
async fn show(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let token = token_in(req.query_string().as_bytes()).unwrap_or_default();
    let claims = match open(&state, &token) {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    match accounts::inspect_verification(&state.pool, &claims).await {
        Ok(LinkTarget::Awaiting { address }) => Page::new(StatusCode::OK, "Confirm your email address", &[])
            .with_paragraph(format!("Press the button to confirm that {address} is your address."))
            .with_form(Form { action: PATH, token, button: "Confirm my address" }),
        Ok(other) => refused(other),
        Err(err) => Page::unavailable(err),
    }
}

/// The button: verifies the address and spends the link.
#[tracing::instrument(skip_all)]
async fn confirm(state: web::Data<AppState>, req: HttpRequest, ip: ClientIp, body: web::Bytes) -> Page {
    if !is_form(req.headers()) {
        return not_a_form();
    }
    let token = token_in(&body).unwrap_or_default();
    let claims = match open(&state, &token) {
        Ok(claims) => claims,
        Err(page) => return page,
    };
    match accounts::verify(&state.pool, &claims).await {
        Ok(Verified::Now { address }) => {
            let request_id = RequestContext::current().request_id;
            let (user_id, ip) = (claims.user_id, ip.0);
            tracing::info!(target: "audit", event = "email_verified", %user_id, %ip, %request_id);
            Page::new(StatusCode::OK, "Your address is confirmed", &[])
                .with_paragraph(format!("Reminders will now be sent to {address}."))
        }
        Ok(Verified::Refused(target)) => refused(target),
        Ok(Verified::AddressTaken) => Page::new(
            StatusCode::CONFLICT,
            "This address belongs to another account",
            &[
                "Another account registered it since the email was sent. Your account keeps its current address.",
            ],
        ),
        Err(err) => Page::unavailable(err),
    }
}

fn open(state: &AppState, token: &str) -> Result<Claims, Page> {
    state.links.open(token, Purpose::VerifyEmail, Utc::now()).map_err(Page::for_link_error)
}

fn refused(target: LinkTarget) -> Page {
    match target {
        LinkTarget::AlreadyVerified { address } => Page::new(StatusCode::OK, "Already confirmed", &[])
            .with_paragraph(format!("{address} is already confirmed. There is nothing more to do.")),
        LinkTarget::Used => Page::used(),
        LinkTarget::Stale | LinkTarget::Awaiting { .. } => Page::new(
            StatusCode::GONE,
            "This link is out of date",
            &[
                "The account has asked to confirm another address since this email was sent, or no longer exists.",
            ],
        ),
    }
}
