//! `POST /mcp`: the Model Context Protocol door, over the Streamable HTTP transport.
//!
//! Like every door it only translates (see `tools`). The transport part is small and stateless:
//! each POST carries one JSON-RPC message and is answered with `application/json` (a request) or
//! `202` (a notification). The server keeps no session, so it sends no `Mcp-Session-Id`, offers
//! no server-initiated stream (`GET` is a `405`) and has no session to end (`DELETE` is a `405`),
//! all as the transport allows. Each request is authenticated on its own, with an API token (the
//! token's scopes decide which tools are offered and run) or a login.
//!
//! Hand-written rather than on rmcp: see the README's MCP section for why.

mod catalog;
mod modern;
mod resources;
pub mod rpc;
mod schema;
mod tools;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::{Scope, Scopes};
use crate::web::auth::{AuthUser, api_auth, api_token, bearer};
use crate::web::problem::{ApiError, ProblemCode};
use crate::web::state::AppState;

pub const PATH: &str = "/mcp";

/// The handshake revisions this server speaks, newest first: what the official SDKs (the `mcp`
/// Python package 2.3 with `mode="legacy"`, `@modelcontextprotocol/sdk` 1.32) offer in
/// `initialize`. A client asking for another is answered with the newest, as the lifecycle
/// section of the specification says. The 2026-07-28 revision is in `modern`.
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// What a request without `MCP-Protocol-Version` is taken to speak (the transport spec's rule).
const DEFAULT_VERSION: &str = "2025-03-26";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(PATH).route(web::post().to(post)).default_service(web::to(not_allowed)));
}

/// GET (a server-initiated stream), DELETE (ending a session) and anything else: not offered.
async fn not_allowed() -> HttpResponse {
    let body = rpc::error(
        &Value::Null,
        rpc::INVALID_REQUEST,
        "Only POST is served here: this server opens no streams and keeps no sessions.",
        None,
    );
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "POST")).json(body)
}

/// Who is calling, with what scopes (a login holds them all).
struct Caller {
    user: Uuid,
    scopes: Scopes,
    /// An API token's messages are counted here, one read each; a login's were counted by its
    /// extractor already.
    count_here: bool,
}

#[tracing::instrument(skip_all)]
async fn post(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    if !origin_allowed(req.headers(), &state) {
        return transport_error(StatusCode::FORBIDDEN, "The Origin of this request is not allowed.");
    }
    if !accepts_json(req.headers()) {
        return transport_error(
            StatusCode::NOT_ACCEPTABLE,
            "Accept application/json: every answer here is JSON.",
        );
    }
    if !is_json(req.headers()) {
        return transport_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Send the message as application/json.");
    }
    let caller = match authenticate(&req, &state).await {
        Ok(caller) => caller,
        Err(err) => return auth_error(&err),
    };
    let message = match rpc::parse(&body) {
        Ok(message) => message,
        Err(refused) => {
            let body = rpc::error(&Value::Null, refused.code, refused.message, None);
            return HttpResponse::BadRequest().insert_header(no_store()).json(body);
        }
    };
    let rpc::Message::Request { id, method, params } = message else {
        return HttpResponse::Accepted().insert_header(no_store()).finish();
    };
    if modern::is_modern(&method, &params, req.headers()) {
        if let Err(rejection) = modern::check(&method, &params, req.headers()) {
            let status = status(rejection.status());
            let body = rpc::error(&id, rejection.code, &rejection.message, rejection.data);
            return HttpResponse::build(status).insert_header(no_store()).json(body);
        }
        let answer = match method.as_str() {
            "server/discover" => rpc::result(&id, discover()),
            // The handshake belongs to the older revisions.
            "initialize" => rpc::error(&id, rpc::METHOD_NOT_FOUND, "Method not found: initialize", None),
            _ => match counted(&state, &caller, &method) {
                Err(err) => return rate_limited(&id, &err),
                Ok(counted) => answer(&state, &caller, &id, &method, params, counted).await,
            },
        };
        let code = answer["error"]["code"].as_i64();
        return HttpResponse::build(status(code.map_or(200, modern::status_of)))
            .insert_header(no_store())
            .json(modern::decorate(&method, answer));
    }
    if method != "initialize"
        && let Some(version) = protocol_version(req.headers())
        && !PROTOCOL_VERSIONS.contains(&version)
    {
        let data = json!({ "supported": PROTOCOL_VERSIONS, "requested": version });
        let body = rpc::error(&id, rpc::INVALID_REQUEST, "Unsupported protocol version", Some(data));
        return HttpResponse::BadRequest().insert_header(no_store()).json(body);
    }
    let counted = match counted(&state, &caller, &method) {
        Ok(counted) => counted,
        Err(err) => return rate_limited(&id, &err),
    };
    let answer = answer(&state, &caller, &id, &method, params, counted).await;
    HttpResponse::Ok().insert_header(no_store()).json(answer)
}

/// Counts the message as one read of the caller's. A tool call's rate limit is its tool's result
/// (the outer `Ok` carries it on); any other message over the limit is refused outright (`Err`).
fn counted(state: &AppState, caller: &Caller, method: &str) -> Result<Result<(), ApiError>, ApiError> {
    let counted =
        if caller.count_here { state.rate_limits.check_user(caller.user, &Method::GET) } else { Ok(()) };
    match counted {
        Err(err) if method != "tools/call" => Err(err),
        counted => Ok(counted),
    }
}

/// A message the rate limit refused before it ran: `429` with `Retry-After`, as REST answers it,
/// so HTTP-level clients and proxies back off; the SDKs surface a non-2xx answer as an error of
/// the request, as they would a JSON-RPC error. The body is still a JSON-RPC error for the id.
fn rate_limited(id: &Value, err: &ApiError) -> HttpResponse {
    let summary = err.summary();
    let mut response = HttpResponse::build(status(summary.status));
    response.insert_header(no_store());
    if let Some(secs) = summary.retry_after_secs {
        response.insert_header((header::RETRY_AFTER, secs));
    }
    response.json(rpc::error(id, -32000, &summary.detail, Some(json!(summary))))
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    id: &Value,
    method: &str,
    params: Value,
    // Only a tool call can arrive here over the limit (see `counted`).
    counted: Result<(), ApiError>,
) -> Value {
    match method {
        // A tool call's problems, its rate limit included, are the tool's result.
        "tools/call" => {
            let Some(name) = params["name"].as_str() else {
                return rpc::error(id, rpc::INVALID_PARAMS, "tools/call needs `name`.", None);
            };
            let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
            let result = match counted {
                Ok(()) => tools::call(state, caller.user, &caller.scopes, name, arguments).await,
                Err(err) => tools::refused(name, &err),
            };
            match result {
                Some(result) => rpc::result(id, result),
                None => rpc::error(id, rpc::INVALID_PARAMS, &format!("Unknown tool: {name}"), None),
            }
        }
        "initialize" => rpc::result(id, initialize(&params)),
        "ping" => rpc::result(id, json!({})),
        "tools/list" => rpc::result(id, json!({ "tools": catalog::listed(&caller.scopes) })),
        "resources/list" => rpc::result(id, json!({ "resources": [] })),
        "resources/templates/list" => {
            rpc::result(id, json!({ "resourceTemplates": resources::templates(&caller.scopes) }))
        }
        "resources/read" => resources::read(state, caller.user, &caller.scopes, id, &params).await,
        method => rpc::error(id, rpc::METHOD_NOT_FOUND, &format!("Method not found: {method}"), None),
    }
}

const INSTRUCTIONS: &str = "Manage the user's tasks and projects. Writes apply all or nothing; a tool error names the field and the rule that was broken, so correct the input and call again.";

fn capabilities() -> Value {
    json!({ "tools": { "listChanged": false }, "resources": {} })
}

fn server_info() -> Value {
    json!({ "name": "todo", "title": "Todo", "version": env!("CARGO_PKG_VERSION") })
}

fn initialize(params: &Value) -> Value {
    let asked = params["protocolVersion"].as_str().unwrap_or(DEFAULT_VERSION);
    let version = PROTOCOL_VERSIONS.iter().find(|v| **v == asked).unwrap_or(&PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

/// The 2026-07-28 revision's probe: which envelope revisions are served, and what this server offers.
fn discover() -> Value {
    json!({
        "supportedVersions": modern::VERSIONS,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
}

async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let token = bearer(req.headers()).ok_or(ApiError::Unauthorized { code: ProblemCode::TokenMissing })?;
    if api_token::looks_like_one(token) {
        let (user, scopes) = api_auth::authenticate_scoped(state, token, None).await?;
        return Ok(Caller { user: user.id, scopes, count_here: true });
    }
    let user = AuthUser::from_request(req, &mut Payload::None).await?;
    let every: Vec<String> = Scope::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    Ok(Caller { user: user.id, scopes: Scopes::from_stored(&every), count_here: false })
}

/// A browser page may only reach this door from an origin the service names as its own (its
/// public URL or a configured CORS origin): that is what stops DNS rebinding. Clients that are
/// not browsers send no `Origin`.
fn origin_allowed(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let origin = origin.trim().trim_end_matches('/');
    let public = state.settings.public_url().is_ok_and(|url| url.as_str().trim_end_matches('/') == origin);
    public
        || state
            .settings
            .server
            .cors_allowed_origins
            .iter()
            .any(|allowed| allowed != "*" && allowed == origin)
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return true };
    accept
        .split(',')
        .map(|range| range.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .any(|range| matches!(range.as_str(), "application/json" | "application/*" | "*/*"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"))
}

fn protocol_version(headers: &HeaderMap) -> Option<&str> {
    headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).map(str::trim)
}

fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

fn transport_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).insert_header(no_store()).json(rpc::error(
        &Value::Null,
        rpc::INVALID_REQUEST,
        message,
        None,
    ))
}

/// A credential problem, with the status and challenge the REST API answers it with (RFC 6750:
/// `WWW-Authenticate: Bearer`, with `error="invalid_token"` when a token was sent but refused),
/// and a JSON-RPC error as the body so MCP clients can show it.
fn auth_error(err: &ApiError) -> HttpResponse {
    let summary = err.summary();
    let status = StatusCode::from_u16(summary.status).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = HttpResponse::build(status);
    response.insert_header(no_store());
    if status == StatusCode::UNAUTHORIZED {
        let challenge = match summary.code {
            ProblemCode::TokenMissing => r#"Bearer realm="todo""#.to_owned(),
            code => format!(r#"Bearer realm="todo", error="invalid_token", error_description="{code}""#),
        };
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
    }
    if let Some(secs) = summary.retry_after_secs {
        response.insert_header((header::RETRY_AFTER, secs));
    }
    response.json(rpc::error(&Value::Null, -32000, &summary.detail, Some(json!(summary))))
}
