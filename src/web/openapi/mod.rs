//! The OpenAPI 3.1 document, generated from the handlers' annotations and completed here with
//! what every operation of a kind shares: problem answers, headers, security and examples.

mod examples;
mod headers;

use serde_json::{Value, json};
use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::auth::scope::{self, Needs};
use super::problem::{FieldError, Problem};
use super::routes::tasks::list::{SortOrder, TagMatch, TaskSort};
use super::routes::{
    auth, calendar_feeds, events, ops, password, projects, sync, tasks, tokens, users, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Todo API",
        description = "A multi-user task service: priorities, tags, due dates, reminders and recurrence.\n\n\
            Every error is an RFC 9457 problem document whose `code` a program can match on. Writes \
            return the resource's `ETag`; send it back in `If-Match` to write only over that \
            version. `POST` creates take an `Idempotency-Key` to make retries safe.",
    ),
    servers((url = "/", description = "The server that serves this document")),
    paths(
        ops::health, ops::ready, ops::prometheus,
        auth::register, auth::login, auth::logout,
        users::me, users::update_me, users::delete_me, users::export, users::resend_verification,
        password::change_password, tokens::create_token, tokens::list_tokens, tokens::delete_token,
        calendar_feeds::create_feed, calendar_feeds::list_feeds, calendar_feeds::delete_feed,
        tasks::list::list, tasks::create, tasks::list::trash, tasks::subtasks, tasks::get_task, tasks::update, tasks::replace,
        tasks::remove, tasks::restore, tasks::toggle, tasks::complete, tasks::reminders::history,
        tasks::bulk::bulk,
        projects::list, projects::create, projects::get_project, projects::update, projects::remove,
        sync::changes_feed, events::create_ticket, events::events_stream,
        webhooks::create, webhooks::list, webhooks::get_webhook, webhooks::update, webhooks::remove,
        webhooks::rotate, webhooks::deliveries::list, webhooks::deliveries::retry, webhooks::deliveries::test,
    ),
    components(schemas(Problem, FieldError, TaskSort, SortOrder, TagMatch)),
    modifiers(&BearerAuth, &CommonResponses, &UserScopedAliases),
    tags(
        (name = "auth", description = "Accounts and access tokens"),
        (name = "users", description = "The caller's own account"),
        (name = "tokens", description = "Personal API tokens for scripts and integrations; managing them takes a login"),
        (name = "calendar", description = "Secret addresses that calendar apps subscribe to; the feed itself is `GET /calendar/{secret}.ics`, outside this API"),
        (name = "tasks", description = "The caller's tasks; also served under /users/{user_id}"),
        (name = "projects", description = "The caller's projects; also served under /users/{user_id}"),
        (name = "sync", description = "The change feed and live events; also served under /users/{user_id}"),
        (name = "webhooks", description = "Endpoints that receive signed event messages (Standard Webhooks), and their delivery logs"),
        (name = "operations", description = "Liveness, readiness and metrics"),
        (name = "aliases", description = "The `tasks`, `projects` and `sync` operations again under `/api/v1/users/{user_id}`, for clients written against that form. Each one is its namesake without the `Alias` suffix, with `user_id` the caller's own id or `me`; generators can leave this tag out."),
    ),
)]
pub struct ApiDoc;

/// The document as the route annotations build it, before the passes below: which paths and
/// methods there are.
pub fn annotated() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(annotated()).unwrap_or_default();
    secure(&mut doc);
    require_every_property(&mut doc);
    headers::declare(&mut doc);
    describe_scopes(&mut doc);
    describe_empty_responses(&mut doc);
    webhook_messages(&mut doc);
    examples::attach(&mut doc);
    doc
}

/// Bearer tokens by default, said once at the root; the public operations opt out with an
/// empty list, which is what tells a generator they need no credentials.
fn secure(doc: &mut Value) {
    doc["security"] = json!([{"bearer": []}]);
    for operation in operations_mut(doc) {
        if operation.get("security").is_none() {
            operation.insert("security".into(), json!([]));
        }
    }
}

/// The response schemas whose every property is always sent, `null` included: a generator
/// then types `due_at` as "a time or null", not as "maybe missing". (The integration tests
/// check every response against this.)
const ALWAYS_COMPLETE: &[&str] = &[
    "Task",
    "Project",
    "UserView",
    "Delivery",
    "TaskPage",
    "SubtaskList",
    "TokenResponse",
    "EventTicket",
    "ChangesPage",
    "ApiToken",
    "CreatedToken",
    "WebhookEndpoint",
    "WebhookWithSecret",
    "WebhookDelivery",
    "WebhookDeliveryPage",
    "CalendarFeed",
    "CreatedFeed",
];

fn require_every_property(doc: &mut Value) {
    for name in ALWAYS_COMPLETE {
        let schema = &mut doc["components"]["schemas"][*name];
        let Some(properties) = schema["properties"].as_object() else { continue };
        let all: Vec<Value> = properties.keys().map(|k| json!(k)).collect();
        schema["required"] = Value::Array(all);
    }
}

/// Says in each secured operation's description what an API token needs to call it, for
/// readers and generators that do not show security scopes. The scope itself is declared once,
/// in the operation's `apiToken` requirement.
fn describe_scopes(doc: &mut Value) {
    for operation in operations_mut(doc) {
        if operation["security"].as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        let line = match scope::declared(&Value::Object(operation.clone())) {
            Some(Needs::Scope(scope)) => format!("**API tokens** need the `{scope}` scope."),
            _ => "**API tokens** cannot call this operation: it needs a login token.".to_owned(),
        };
        let description = operation["description"].as_str().unwrap_or_default();
        let description = format!("{description}\n\n{line}");
        operation.insert("description".into(), json!(description));
    }
}

/// The messages webhook endpoints receive, as OpenAPI 3.1 `webhooks`: one per event, each a
/// signed POST of a `WebhookEvent`.
fn webhook_messages(doc: &mut Value) {
    let data = json!({
        "description": "The task or project as `GET` returns it (nothing for `ping`), plus `change_seq`: \
            the user's change number (for a task change, the task's own, as in `listChanges`; a \
            project change and a `reminder.sent` take the next number too). Each message has its own \
            number, higher than every earlier one's, so a receiver can skip a stale message.",
        "oneOf": [
            {"allOf": [{"$ref": "#/components/schemas/Task"}, {"$ref": "#/components/schemas/ChangeNumber"}]},
            {"allOf": [{"$ref": "#/components/schemas/Project"}, {"$ref": "#/components/schemas/ChangeNumber"}]},
            {"type": "object", "required": ["endpoint_id", "change_seq"], "properties": {
                "endpoint_id": {"type": "string", "format": "uuid"},
                "change_seq": {"type": "integer", "format": "int64"}}},
        ],
    });
    let mut events: Vec<&str> = crate::webhooks::EVENTS.to_vec();
    events.push(crate::webhooks::PING);
    doc["components"]["schemas"]["ChangeNumber"] = json!({
        "type": "object",
        "required": ["change_seq"],
        "properties": {"change_seq": {"type": "integer", "format": "int64", "minimum": 0}},
    });
    doc["components"]["schemas"]["WebhookEvent"] = json!({
        "type": "object",
        "description": "The body of every webhook message. Headers: `webhook-id` (the same on every \
            attempt; use it to drop repeats), `webhook-timestamp` (Unix seconds of this attempt) and \
            `webhook-signature` (`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the endpoint's \
            key; two space-separated signatures for 24 hours after a rotation).",
        "required": ["type", "timestamp", "data"],
        "properties": {
            "type": {"type": "string", "enum": events},
            "timestamp": {"type": "string", "format": "date-time", "description": "When the change happened"},
            "data": data,
        },
    });
    let mut hooks = serde_json::Map::new();
    for event in events {
        hooks.insert(event.to_owned(), json!({"post": {
            "summary": format!("The `{event}` message"),
            "description": "Sent to each enabled endpoint subscribed to the event, in change order per \
                endpoint. Answer 2xx within 10 s; anything else is retried (immediately, then after 5 s, \
                5 min, 30 min, 2 h, 5 h, 10 h and 10 h). 410 disables the endpoint.",
            "operationId": format!("webhook{}", camel(event)),
            "tags": ["webhooks"],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}}},
            "responses": {"200": {"description": "Received; any 2xx counts"}, "410": {"description": "Gone: the endpoint is disabled"}},
        }}));
    }
    doc["webhooks"] = Value::Object(hooks);
}

/// `task.created` → `TaskCreated`.
fn camel(event: &str) -> String {
    event
        .split(['.', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// A short description for answers the annotations left without one (a response description
/// is required by the specification).
fn describe_empty_responses(doc: &mut Value) {
    for operation in operations_mut(doc) {
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            if response["description"].as_str().is_none_or(str::is_empty) {
                response["description"] = json!(default_description(status));
            }
        }
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "204" => "Done; no content",
        "304" => "Not modified since the ETag given in `If-None-Match`",
        "400" => "Malformed JSON, query or header",
        "401" => "Missing, invalid, expired or revoked token",
        "403" => "`user_id` is not the caller",
        "404" => "No such resource, or it is not the caller's",
        "409" => "Conflicts with the current state; `code` says how",
        "412" => "`If-Match` does not match the current version",
        "422" => "A value breaks a rule; the problem names the field",
        _ => "See the problem document's `code`",
    }
}

/// Every operation object of the document, as JSON.
fn operations_mut(doc: &mut Value) -> impl Iterator<Item = &mut serde_json::Map<String, Value>> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
        .filter(|operation| operation.contains_key("responses"))
}

/// Declares the schemes operations reference: `bearer` (the access token from signing in),
/// `apiToken` (a personal API token, limited to its scopes) and `ticket` (a single-use ticket
/// for the event stream, for clients that cannot send headers).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The `access_token` from `registerUser` or `loginUser`."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            scope::SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("todo_pat_")
                    .description(Some(
                        "A personal API token from `createToken`: `todo_pat_` followed by 43 characters \
                         of base64url, sent as `Authorization: Bearer todo_pat_…`. It carries scopes \
                         (`tasks:read`, `tasks:write`, `projects:read`, `projects:write`, `webhooks`, \
                         `account`); each operation lists the one it needs under this scheme, and one \
                         that lists none takes a login token only. A missing scope is a `403` with \
                         `WWW-Authenticate: Bearer error=\"insufficient_scope\"`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A ticket from `createEventTicket`, good once, within a minute, for `streamEvents` only.",
            ))),
        );
    }
}

/// Adds the answers every operation of a kind can give, which the handlers' annotations leave
/// out: 401 wherever a token is needed, 400/408/413/415/422 wherever a body or query is parsed,
/// 412 with `If-Match`, and 429, 500 and 503 everywhere under `/api/v1`. Also types the conditional and
/// idempotency headers as plain strings (a missing header is not a `null` one).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            for operation in operations(item) {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let params = operation.parameters.get_or_insert_with(Vec::new);
                let mut has_if_match = false;
                let mut has_query = false;
                for param in params.iter_mut() {
                    match (&param.parameter_in, param.name.as_str()) {
                        (ParameterIn::Header, name) => {
                            has_if_match |= name == "If-Match";
                            param.schema = Some(header_schema(name).into());
                        }
                        (ParameterIn::Query, _) => has_query = true,
                        _ => {}
                    }
                }
                let has_body = operation.request_body.is_some();
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| problem(description).into());
                };
                if secured {
                    add("401", "Missing, invalid, expired or revoked token");
                    add("403", "`insufficient_scope`: an API token without the scope this operation needs");
                }
                if has_body
                    || has_query
                    || has_if_match
                    || path.ends_with("/restore")
                    || path.ends_with("/toggle")
                {
                    add("400", "Malformed JSON, query or header");
                    add("422", "A value breaks a rule; the problem names the field");
                }
                if has_body {
                    add("413", "The body is over the size limit");
                    add("415", "The body is not JSON, or is compressed");
                    add("408", "The body did not arrive in time");
                }
                if has_if_match {
                    add("412", "`If-Match` does not match the current version");
                }
                add("429", "A rate limit was reached; see `Retry-After`");
                add("503", "Overloaded or the database is unavailable; see `Retry-After`");
                add("500", "An unexpected error; quote the problem's `request_id` when reporting it");
            }
        }
    }
}

/// A problem-document response.
fn problem(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
        )
        .build()
}

fn header_schema(name: &str) -> utoipa::openapi::Object {
    let string = utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String);
    match name {
        "Idempotency-Key" => {
            string.min_length(Some(1)).max_length(Some(255)).pattern(Some("^[!-~]+$")).build()
        }
        "Last-Event-ID" => utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(0))
            .build(),
        _ => string.min_length(Some(1)).build(),
    }
}

/// The tag of the `/users/{user_id}/…` aliases.
const ALIAS_TAG: &str = "aliases";

/// Documents `/users/{user_id}/tasks…`: the same operations as `/tasks…`, plus the path
/// parameter and the 403 for anyone but the caller.
struct UserScopedAliases;

impl Modify for UserScopedAliases {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let task_paths: Vec<_> = openapi
            .paths
            .paths
            .iter()
            .filter(|(path, _)| {
                ["/api/v1/tasks", "/api/v1/projects", "/api/v1/changes", "/api/v1/events"]
                    .iter()
                    .any(|prefix| path.starts_with(prefix))
            })
            .map(|(path, item)| (path.replacen("/api/v1/", "/api/v1/users/{user_id}/", 1), item.clone()))
            .collect();
        let user_id = ParameterBuilder::new()
            .name("user_id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The caller's own id, or `me`"))
            .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String)))
            .build();
        let forbidden = problem(
            "`user_id` is not the caller (`forbidden`), or an API token lacks the scope (`insufficient_scope`)",
        );
        for (path, mut item) in task_paths {
            for operation in operations(&mut item) {
                operation.parameters.get_or_insert_with(Vec::new).insert(0, user_id.clone());
                operation.responses.responses.insert("403".into(), forbidden.clone().into());
                let id = operation.operation_id.clone().unwrap_or_default();
                operation.description = Some(format!(
                    "Alias of `{id}` under `/users/{{user_id}}`, where `user_id` is the caller's own id or `me`; \
                     anyone else's id gets `403`.\n\n{}",
                    operation.description.as_deref().unwrap_or_default()
                ));
                operation.operation_id = Some(format!("{id}Alias"));
                operation.tags = Some(vec![ALIAS_TAG.to_owned()]);
            }
            openapi.paths.paths.insert(path, item);
        }
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
}
