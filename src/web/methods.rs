//! Methods the route attributes alone get wrong: actix answers neither HEAD for a `#[get]` route
//! nor 405 for a known path asked with a method it does not serve (the router falls through to
//! the 404 default). Here HEAD is routed as GET, and the default service tells a known path
//! (405 with `Allow`) from an unknown one (404).
//!
//! Which methods a path serves is read from the OpenAPI document: utoipa builds it from the same
//! `#[get]`, `#[post]`… attributes that register the routes, the `/users/{user_id}` aliases
//! included, so a new route needs nothing here.

use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{OpenApi, RefOr};

use super::problem::ApiError;

/// The routes as the OpenAPI document lists them.
pub struct Routes {
    routes: Vec<Route>,
}

struct Route {
    path: ResourceDef,
    /// In `ORDER`, with HEAD wherever GET is served but does not stream.
    methods: Vec<Method>,
    streams: bool,
}

/// The order methods are listed in `Allow`.
const ORDER: [Method; 6] =
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

impl Routes {
    pub fn from_document(document: &OpenApi) -> Self {
        let routes = document.paths.paths.iter().map(|(path, item)| Route::new(path, item)).collect();
        Self { routes }
    }

    /// Every method some route serves at `path`, in `ORDER`; empty for an unknown path. A path
    /// can match several routes (`/tasks/trash` is also a `/tasks/{id}`), and the router tries
    /// them all, so the answer is their union.
    pub fn allowed(&self, path: &str) -> Vec<Method> {
        let matching: Vec<&Route> = self.matching(path).collect();
        ORDER
            .into_iter()
            .filter(|method| matching.iter().any(|route| route.methods.contains(method)))
            .collect()
    }

    /// HEAD is routed as GET everywhere but on event streams. Where no GET is served either, the
    /// GET finds no route and the answer is the same 405 or 404 HEAD would get.
    fn answers_head(&self, path: &str) -> bool {
        !self.matching(path).any(|route| route.streams)
    }

    fn matching(&self, path: &str) -> impl Iterator<Item = &Route> {
        self.routes.iter().filter(move |route| route.path.is_match(path))
    }
}

impl Route {
    fn new(path: &str, item: &PathItem) -> Self {
        let streams = item.get.as_ref().is_some_and(streams);
        let methods = ORDER
            .into_iter()
            .filter(|method| match operation(item, method) {
                Some(_) => true,
                None => *method == Method::HEAD && item.get.is_some() && !streams,
            })
            .collect();
        Self { path: ResourceDef::new(path), methods, streams }
    }
}

fn operation<'a>(item: &'a PathItem, method: &Method) -> Option<&'a Operation> {
    match method.as_str() {
        "GET" => item.get.as_ref(),
        "HEAD" => item.head.as_ref(),
        "POST" => item.post.as_ref(),
        "PUT" => item.put.as_ref(),
        "PATCH" => item.patch.as_ref(),
        "DELETE" => item.delete.as_ref(),
        _ => None,
    }
}

/// A GET whose success is an event stream never ends: HEAD there would hold the connection and
/// a place under the stream limits (and spend a single-use ticket) to send nothing.
fn streams(get: &Operation) -> bool {
    get.responses.responses.get("200").is_some_and(|response| match response {
        RefOr::T(response) => response.content.contains_key("text/event-stream"),
        RefOr::Ref(_) => false,
    })
}

/// Routes HEAD as GET, so every read answers HEAD with the same status and headers. actix-http
/// drops the body of any answer to a HEAD request, as it decides from the method on the wire,
/// and keeps the `Content-Length` GET would send. Runs innermost, so everything else (metrics,
/// logs, rate limits) sees the method the client sent.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let as_get = req.method() == Method::HEAD
        && req.app_data::<web::Data<Routes>>().is_some_and(|routes| routes.answers_head(req.path()));
    if as_get {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// The default service: what no route took.
pub async fn unrouted(req: HttpRequest, routes: web::Data<Routes>) -> Result<HttpResponse, ApiError> {
    let allow = routes.allowed(req.path());
    if allow.is_empty() {
        return Err(ApiError::NotFound);
    }
    Err(ApiError::MethodNotAllowed { method: req.method().clone(), allow })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(routes: &Routes, path: &str) -> String {
        routes.allowed(path).iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }

    #[test]
    fn a_path_serves_every_method_of_the_routes_it_matches_and_streams_do_not_answer_head() {
        let routes = Routes::from_document(&crate::web::openapi::annotated());
        assert_eq!(allowed(&routes, "/api/v1/tasks/trash"), "GET, HEAD, PUT, PATCH, DELETE");
        assert_eq!(allowed(&routes, "/api/v1/users/me/projects/x"), "GET, HEAD, PATCH, DELETE");
        assert_eq!(allowed(&routes, "/api/v1/auth/login"), "POST");
        assert_eq!(allowed(&routes, "/api/v1/events"), "GET");
        assert_eq!(allowed(&routes, "/api/v1/no-such-thing"), "");
        assert!(!routes.answers_head("/api/v1/users/me/events"));
        assert!(routes.answers_head("/api/v1/tasks") && routes.answers_head("/openapi.json"));
    }
}
