//! Builds the web process from library parts. Tests and `main` share this code: `build` binds
//! the listener and reports the port, so tests can use port 0.

use std::net::TcpListener;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{Compress, DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use sqlx::PgPool;
use utoipa_swagger_ui::SwaggerUi;

use super::routes;
use super::state::AppState;
use super::{body_guard, extractors, listener, methods, request_id, security_headers};
use crate::config::Settings;
use crate::db;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects to the database (creating and migrating it when configured) and binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = db::connect(&settings.database).await?;
        if settings.database.migrate_on_start {
            db::migrate(&pool).await?;
        }
        Self::build_with_pool(settings, pool)
    }

    /// Binds the port and assembles the server around an existing pool.
    pub fn build_with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address}"))?;
        let port = listener.local_addr()?.port();
        let listener_pool = db::listener_pool(&settings.database)?;
        let state = web::Data::new(AppState::new(settings, pool)?);
        // Ends by itself once the state (and so the cache and the hub) is gone.
        let subscribers = listener::Subscribers {
            cache: std::sync::Arc::downgrade(&state.token_cache),
            hub: std::sync::Arc::downgrade(&state.events),
        };
        tokio::spawn(listener::listen(listener_pool, subscribers));
        tokio::spawn(crate::web::events::follow_heads(std::sync::Arc::downgrade(&state.events)));
        state.reads.watch(std::time::Duration::from_millis(state.settings.database.replica_check_ms));
        let server = run(listener, state.clone())?;
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state, for tests that look inside (live actors, for one).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT or SIGTERM, then drains in-flight requests. Event streams never end
    /// by themselves, so they are ended first, each with a last comment, and clients reconnect
    /// to another process.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let events = self.state.events.clone();
        tokio::spawn(async move {
            if stop_requested().await.is_ok() {
                events.shut_down();
            }
        });
        self.server.await
    }
}

/// SIGTERM or SIGINT, the signals actix stops on.
async fn stop_requested() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        res = tokio::signal::ctrl_c() => res,
        _ = term.recv() => Ok(()),
    }
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    // Install the recorder before the first request so no sample is lost.
    crate::metrics::handle();
    crate::metrics::register_web_series(&crate::jobs::queues());
    let server_settings = state.settings.server.clone();
    let body_limit = server_settings.body_limit_bytes;
    let body_timeout = Duration::from_secs(server_settings.body_timeout_secs.max(1));
    let hsts = security_headers::hsts_value(server_settings.hsts_max_age_secs);
    let cors_origins = server_settings.cors_allowed_origins.clone();
    let openapi = super::openapi::document();
    let known_routes = web::Data::new(methods::Routes::from_document(&super::openapi::annotated()));

    let mut server = HttpServer::new(move || {
        let hsts = hsts.clone();
        App::new()
            .app_data(state.clone())
            .app_data(known_routes.clone())
            .app_data(extractors::json_config(body_limit, body_timeout))
            .app_data(extractors::query_config())
            .app_data(extractors::path_config())
            .app_data(web::PayloadConfig::new(body_limit))
            // Innermost: HEAD reaches the router as GET, after every other layer saw it as HEAD.
            .wrap(from_fn(methods::head_as_get))
            .wrap(from_fn(move |req, next| body_guard::middleware(req, next, body_timeout)))
            .wrap(Compress::default())
            .wrap(from_fn(drop_identity_encoding))
            .wrap(cors(&cors_origins))
            .wrap(from_fn(move |req, next| security_headers::middleware(req, next, hsts.clone())))
            .wrap(from_fn(super::reads::stamp))
            .wrap(from_fn(request_id::middleware))
            .configure(routes::ops::configure)
            // Pages behind links in emails: HTML for people, outside the JSON API.
            .configure(super::pages::configure)
            // The Model Context Protocol door for agents: JSON-RPC, outside the REST document.
            .configure(super::mcp::configure)
            // CalDAV for calendar clients: WebDAV XML, outside the REST document.
            .configure(super::dav::configure)
            // Calendar feeds: public, the secret in the address is the credential.
            .configure(routes::calendar::configure)
            .route("/docs", web::get().to(docs_redirect))
            .service(SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", openapi.clone()))
            // API answers carry tokens and personal data: no shared or browser cache may keep them.
            .service(
                web::scope("/api/v1")
                    .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
                    // Scope checks come before any handler's extractors read the request.
                    .wrap(from_fn(super::auth::api_auth::guard))
                    .configure(routes::configure_api),
            )
            .default_service(web::to(methods::unrouted))
    })
    .shutdown_timeout(server_settings.shutdown_timeout_secs)
    // A response goes out in more than one write; with Nagle's algorithm on, a large body could
    // wait for the client's delayed ACK (40 ms) before its last segment left.
    .tcp_nodelay(true)
    // Slow headers are cut off here; slow bodies by the body guard's deadline.
    .client_request_timeout(Duration::from_secs(server_settings.header_timeout_secs.max(1)))
    // A client's EOF ends its connection at once. Allowed half-closes would keep a closed event
    // stream (and its place under the stream limits) until a heartbeat failed to write, up to two
    // heartbeats later. HTTP clients do not half-close while they wait for an answer.
    .h1_allow_half_closed(false)
    // Each open connection holds buffers; this caps what many idle or slow clients can pin.
    .max_connections(server_settings.max_connections_per_worker);
    if server_settings.workers > 0 {
        server = server.workers(server_settings.workers);
    }
    Ok(server.listen(listener)?.run())
}

/// Browsers may call the API only from the configured origins. The API authenticates with bearer
/// tokens, never cookies, so credentials are not allowed and `*` is never paired with them.
fn cors(origins: &[String]) -> Cors {
    let cors = origins.iter().fold(Cors::default(), |cors, origin| match origin.as_str() {
        "*" => cors.allow_any_origin(),
        origin => cors.allowed_origin(origin),
    });
    cors.allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static(super::reads::HEADER),
            // What MCP clients send to `/mcp` (from the origins listed here only).
            header::HeaderName::from_static("mcp-protocol-version"),
            header::HeaderName::from_static("mcp-method"),
            header::HeaderName::from_static("mcp-name"),
        ])
        // A page reads only the safelisted response headers unless listed here: these are the
        // others the API sends for clients to act on.
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::ALLOW,
            header::WWW_AUTHENTICATE,
            header::CONTENT_DISPOSITION,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static(super::reads::HEADER),
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
            header::HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(3600)
        // A foreign origin gets an ordinary answer without CORS headers (which the browser then
        // keeps from its page), rather than a non-problem error from the middleware.
        .block_on_origin_mismatch(false)
}

/// An event stream asks `Compress` to leave it alone with `Content-Encoding: identity`; the header
/// has done its job once past `Compress`, and RFC 9110 says not to send it.
async fn drop_identity_encoding(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    if headers.get(header::CONTENT_ENCODING).is_some_and(|v| v == "identity") {
        headers.remove(header::CONTENT_ENCODING);
    }
    Ok(response)
}

async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}
