//! `/email/task`: the complete and snooze links of reminder and agenda emails. GET shows the task and one
//! button; the button's POST runs the same command the API would, through the user's actor, so
//! version, ETag, change feed, live events, recurrence and jobs follow as for any write.
//!
//! The link names the email it came from: a reminder's links name the reminder, and go stale once
//! it moves (by a snooze from this email, too); an agenda's name the task's due time, and go stale
//! once the task is rescheduled. Once the task is done or deleted, every link is stale.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::Utc;

use super::{Form, Page, is_form, not_a_form, token_in};
use crate::commands::{Command, IfMatch, Outcome, WriteError};
use crate::db::{links, tasks, users};
use crate::domain::{Task, TimeZone};
use crate::email::reminder::human_time;
use crate::links::{Action, Anchor, Claims, Purpose, TaskAction};
use crate::web::actors::ActorError;
use crate::web::state::AppState;

pub const PATH: &str = crate::links::paths::TASK;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PATH)
            .route(web::get().to(show))
            .route(web::post().to(act))
            .default_service(web::to(super::method_not_allowed)),
    );
}

/// What the link would do. Changes nothing: mail scanners fetch every link.
#[tracing::instrument(skip_all)]
async fn show(state: web::Data<AppState>, req: HttpRequest) -> Page {
    let token = token_in(req.query_string().as_bytes()).unwrap_or_default();
    let (claims, link) = match open(&state, &token) {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let task = match current(&state, &claims, &link).await {
        Ok(task) => task,
        Err(page) => return page,
    };
    let question = match link.action {
        Action::Complete => "Mark this task as done?",
        Action::Snooze(_) => "Snooze this reminder?",
    };
    Page::new(StatusCode::OK, question, &[]).with_paragraph(task.title).with_form(Form {
        action: PATH,
        token,
        button: link.action.label(),
    })
}

/// The button: spends the link and runs the action as the user.
#[tracing::instrument(skip_all)]
async fn act(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> Page {
    if !is_form(req.headers()) {
        return not_a_form();
    }
    let token = token_in(&body).unwrap_or_default();
    let (claims, link) = match open(&state, &token) {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let task = match current(&state, &claims, &link).await {
        Ok(task) => task,
        Err(page) => return page,
    };
    let zone = match users::find(&state.pool, claims.user_id).await {
        Ok(Some(user)) => TimeZone::parse("timezone", &user.timezone).unwrap_or(TimeZone::UTC),
        Ok(None) => return gone(),
        Err(err) => return Page::unavailable(err),
    };
    // The version read above: a write between that check and this one makes the command fail
    // (412) instead of acting on a task that may have changed meanwhile.
    let if_match = IfMatch(Some(vec![task.version]));
    // The link is spent in the command's own transaction: it commits with the write, or stays
    // unused when the write fails or never commits.
    let command = match link.action {
        Action::Complete => {
            Command::SetCompleted { id: task.id, completed: true, if_match, link: Some(claims.clone()) }
        }
        Action::Snooze(snooze) => Command::Snooze {
            id: task.id,
            reminder_at: snooze.until(Utc::now(), zone),
            if_match,
            link: Some(claims.clone()),
        },
    };
    let outcome = state.actors.execute(claims.user_id, command).await;
    match outcome {
        Ok(Outcome::Updated(task)) => done(&task, link.action, zone),
        Ok(_) => failed("an unexpected outcome"),
        Err(ActorError::Write(WriteError::LinkUsed)) => Page::used(),
        Err(ActorError::Write(WriteError::NotFound)) => gone(),
        Err(ActorError::Write(WriteError::PreconditionFailed | WriteError::Invalid(_))) => Page::new(
            StatusCode::CONFLICT,
            "The task changed meanwhile",
            &["Nothing was done. Open the task in the app to see how it is now."],
        ),
        Err(err) => failed(&err.to_string()),
    }
}

fn open(state: &AppState, token: &str) -> Result<(Claims, TaskAction), Page> {
    let claims = state.links.open(token, Purpose::TaskAction, Utc::now()).map_err(Page::for_link_error)?;
    // A genuine token always has a well-formed subject; refusing one that does not costs nothing.
    let link = TaskAction::from_subject(&claims.subject)
        .ok_or_else(|| Page::for_link_error(crate::links::LinkError::Invalid))?;
    Ok((claims, link))
}

/// The task the link is about, while the link is unused and still applies to it. A token is
/// bound to its user, so another user's task is simply not found.
async fn current(state: &AppState, claims: &Claims, link: &TaskAction) -> Result<Task, Page> {
    // A used link says so, rather than what its own use did to the task ("already done").
    if links::is_used(&state.pool, claims).await.map_err(Page::unavailable)? {
        return Err(Page::used());
    }
    let task =
        tasks::find_live(&state.pool, claims.user_id, link.task_id).await.map_err(Page::unavailable)?;
    let Some(task) = task else { return Err(gone()) };
    if task.completed {
        return Err(Page::new(
            StatusCode::CONFLICT,
            "This task is already done",
            &["There is nothing more to do."],
        )
        .with_paragraph(task.title));
    }
    let moved = match link.anchor {
        Anchor::Reminder(at) => (task.reminder_at != Some(at)).then_some((
            "This reminder has moved",
            "The task's reminder was changed after this email was sent. Use the links in its latest reminder, or the app.",
        )),
        Anchor::Due(at) => (task.due_at != Some(at)).then_some((
            "This task has been rescheduled",
            "The task's due date was changed after this agenda was sent. Use the links in a newer email, or the app.",
        )),
    };
    if let Some((title, why)) = moved {
        return Err(Page::new(StatusCode::GONE, title, &[why]));
    }
    Ok(task)
}

fn gone() -> Page {
    Page::new(
        StatusCode::GONE,
        "This task no longer exists",
        &["It was deleted, or its account was, after this email was sent."],
    )
}

fn done(task: &Task, action: Action, zone: TimeZone) -> Page {
    match (action, task.reminder_at) {
        (Action::Snooze(_), Some(at)) => Page::new(StatusCode::OK, "Reminder snoozed", &[])
            .with_paragraph(task.title.clone())
            .with_paragraph(format!("We will remind you again on {}.", human_time(at, zone))),
        _ => Page::new(StatusCode::OK, "Task done", &[])
            .with_paragraph(format!("\u{201c}{}\u{201d} is marked as done.", task.title)),
    }
}

/// The write could not run (the actor was busy, timed out, or the database failed): nothing
/// changed, and the link still works.
fn failed(why: &str) -> Page {
    tracing::error!(error = why, "email link: the task action failed");
    Page::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again in a moment",
        &["The service is busy or briefly unavailable. Nothing was changed."],
    )
}
