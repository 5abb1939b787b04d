//! Calendars as projects: MKCALENDAR (or an extended MKCOL, RFC 5689) creates one, DELETE
//! deletes it, PROPPATCH renames and recolours it, each as the REST API's project commands do.
//! The inbox is always there and cannot be made, deleted or renamed.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use super::auth::{Caller, lacks};
use super::object::write_refused;
use super::path::{Cal, Target};
use super::props::propstat_response;
use super::xml::{self, APPLE, CALDAV, DAV, Name};
use super::{State, condition, multistatus, plain};
use crate::commands::{Command, IfMatch, ProjectChanges, WriteError};
use crate::db::projects::ProjectFields;
use crate::domain::{Color, Patch, ProjectName, Scope};
use crate::web::actors::ActorError;

/// Names tried when the one asked for is taken: "Tasks", then "Tasks (2)" and on.
const NAME_TRIES: usize = 5;

pub async fn make(state: &State, caller: &Caller, target: &Target, mkcol: bool, body: &[u8]) -> HttpResponse {
    if !caller.can(Scope::ProjectsWrite) {
        return lacks(Scope::ProjectsWrite);
    }
    let Target::Collection(Some(id)) = target else {
        return condition(StatusCode::CONFLICT, "<d:resource-must-be-null/>", "The inbox always exists.");
    };
    let setting = match xml::setting(body) {
        Ok(setting) => setting,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    if mkcol && !setting.resource_types.iter().any(|t| t.is(CALDAV, "calendar")) {
        return condition(
            StatusCode::FORBIDDEN,
            "<d:valid-resourcetype/>",
            "Only calendars can be made here.",
        );
    }
    if setting.components.as_ref().is_some_and(|c| !c.iter().any(|c| c == "VTODO")) {
        return condition(
            StatusCode::FORBIDDEN,
            "<c:supported-calendar-component/>",
            "Calendars here hold tasks (VTODO) only.",
        );
    }
    let text =
        |ns: &str, local: &str| setting.set.iter().find(|(n, _)| n.is(ns, local)).map(|(_, v)| v.as_str());
    let base = text(DAV, "displayname").filter(|n| !n.trim().is_empty()).unwrap_or("Calendar");
    let color = text(APPLE, "calendar-color").and_then(|c| Color::parse(c.get(..7).unwrap_or(c)).ok());
    for attempt in 1..=NAME_TRIES {
        let name = match attempt {
            1 => base.to_owned(),
            n => format!("{base} ({n})"),
        };
        let name = match ProjectName::parse(&name) {
            Ok(name) => name,
            Err(invalid) => {
                return condition(StatusCode::FORBIDDEN, "<d:valid-displayname/>", &invalid.to_string());
            }
        };
        let project = ProjectFields { name, color: color.clone(), position: None, archived: false };
        let command = Command::CreateProject { id: Some(*id), project, idempotency: None };
        match state.actors.execute(caller.id, command).await {
            Ok(_) => return HttpResponse::Created().finish(),
            Err(ActorError::Write(WriteError::ProjectNameTaken)) if attempt < NAME_TRIES => {}
            Err(err) => return write_refused(err),
        }
    }
    condition(StatusCode::CONFLICT, "<d:resource-must-be-null/>", "A project with this name exists.")
}

pub async fn delete(state: &State, caller: &Caller, cal: Cal) -> HttpResponse {
    if !caller.can(Scope::ProjectsWrite) {
        return lacks(Scope::ProjectsWrite);
    }
    let Some(id) = cal else {
        return condition(
            StatusCode::FORBIDDEN,
            "<d:cannot-modify-protected-property/>",
            "The inbox cannot be deleted.",
        );
    };
    // As the REST API does: its tasks go to the trash with it.
    match state.actors.execute(caller.id, Command::DeleteProject { id, if_match: IfMatch(None) }).await {
        Ok(_) => HttpResponse::NoContent().finish(),
        Err(err) => write_refused(err),
    }
}

pub async fn proppatch(state: &State, caller: &Caller, cal: Cal, body: &[u8]) -> HttpResponse {
    let setting = match xml::setting(body) {
        Ok(setting) => setting,
        Err(bad) => return plain(StatusCode::BAD_REQUEST, &bad.0),
    };
    let href = super::path::collection_href(cal);
    let mut changes = ProjectChanges { name: None, color: Patch::Absent, position: None, archived: None };
    let (mut done, mut refused) = (Vec::<Name>::new(), Vec::<Name>::new());
    for (name, value) in &setting.set {
        let applied = match (cal, name) {
            (Some(_), n) if n.is(DAV, "displayname") => {
                ProjectName::parse(value).map(|v| changes.name = Some(v)).is_ok()
            }
            (Some(_), n) if n.is(APPLE, "calendar-color") => {
                Color::parse(value.get(..7).unwrap_or(value)).map(|c| changes.color = Patch::Value(c)).is_ok()
            }
            _ => false,
        };
        if applied { done.push(name.clone()) } else { refused.push(name.clone()) }
    }
    for name in &setting.remove {
        if cal.is_some() && name.is(APPLE, "calendar-color") {
            changes.color = Patch::Null;
            done.push(name.clone());
        } else {
            refused.push(name.clone());
        }
    }
    if let (Some(id), false) = (cal, done.is_empty()) {
        if !caller.can(Scope::ProjectsWrite) {
            return lacks(Scope::ProjectsWrite);
        }
        let command = Command::UpdateProject { id, changes, if_match: IfMatch(None) };
        if let Err(err) = state.actors.execute(caller.id, command).await {
            return write_refused(err);
        }
    }
    multistatus(format!("{}{}</d:multistatus>", xml::ROOT_OPEN, propstat_response(&href, &done, &refused)))
}
