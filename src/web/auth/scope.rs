//! Which scope an API token needs for each route.
//!
//! Each operation declares it once, in its OpenAPI annotation: `security(("bearer" = []),
//! ("apiToken" = ["tasks:read"]))`. This table is read from that document, so what clients are
//! told and what is enforced cannot drift apart, and a route that declares no `apiToken` scope
//! (a new one, or one that must take a login) refuses API tokens: forgetting fails closed.
//! `api_auth::guard` applies it to every `/api/v1` request that carries an API token.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::http::Method;
use serde_json::Value;

use crate::domain::Scope;

/// The name of the API token scheme in the OpenAPI document.
pub const SCHEME: &str = "apiToken";

/// What an API token needs to call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Scope(Scope),
    /// No API token will do: the route takes a login (JWT) only.
    Login,
    /// The route takes no credentials at all.
    Public,
}

pub struct RouteScopes {
    /// `(METHOD, path pattern)` as the router matches them.
    routes: HashMap<(String, String), Needs>,
}

static ROUTES: LazyLock<RouteScopes> =
    LazyLock::new(|| RouteScopes::from_document(&super::super::openapi::document()));

impl RouteScopes {
    pub fn from_document(doc: &Value) -> Self {
        let mut routes = HashMap::new();
        let paths = doc["paths"].as_object().into_iter().flatten();
        for (path, item) in paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                // The served document gives public operations an empty list.
                let public = operation["security"].as_array().is_none_or(Vec::is_empty);
                let needs = match declared(operation) {
                    Some(needs) => needs,
                    None if public => Needs::Public,
                    None => Needs::Login,
                };
                routes.insert((method.to_ascii_uppercase(), path.clone()), needs);
            }
        }
        Self { routes }
    }

    /// What a request to `pattern` (the router's match pattern) needs; HEAD is a GET. `None`
    /// for a route the document does not list.
    pub fn needs(&self, method: &Method, pattern: Option<&str>) -> Option<Needs> {
        let method = if method == Method::HEAD { "GET" } else { method.as_str() };
        pattern.and_then(|pattern| self.routes.get(&(method.to_owned(), pattern.to_owned()))).copied()
    }
}

/// The one scope an operation's `apiToken` requirement names; `None` when it names none, or
/// anything but exactly one known scope.
pub fn declared(operation: &Value) -> Option<Needs> {
    let requirements = operation["security"].as_array()?;
    let scopes = requirements.iter().find_map(|r| r.get(SCHEME))?.as_array()?;
    match scopes.as_slice() {
        [one] => one.as_str().and_then(Scope::parse).map(Needs::Scope),
        _ => None,
    }
}

/// What a request needs, from the document the server serves.
pub fn needs(method: &Method, pattern: Option<&str>) -> Option<Needs> {
    ROUTES.needs(method, pattern)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_declare_their_scope_and_undeclared_ones_take_a_login() {
        let scoped = |m: Method, p: &str| needs(&m, Some(p)).unwrap_or(Needs::Login);
        assert_eq!(scoped(Method::GET, "/api/v1/tasks"), Needs::Scope(Scope::TasksRead));
        assert_eq!(scoped(Method::HEAD, "/api/v1/tasks/{id}"), Needs::Scope(Scope::TasksRead));
        assert_eq!(scoped(Method::POST, "/api/v1/tasks"), Needs::Scope(Scope::TasksWrite));
        assert_eq!(scoped(Method::GET, "/api/v1/users/{user_id}/changes"), Needs::Scope(Scope::TasksRead));
        assert_eq!(scoped(Method::DELETE, "/api/v1/projects/{id}"), Needs::Scope(Scope::ProjectsWrite));
        assert_eq!(scoped(Method::GET, "/api/v1/users/me"), Needs::Scope(Scope::Account));
        assert_eq!(scoped(Method::POST, "/api/v1/calendar-feeds"), Needs::Scope(Scope::Account));
        assert_eq!(scoped(Method::POST, "/api/v1/tokens"), Needs::Login);
        assert_eq!(scoped(Method::DELETE, "/api/v1/users/me"), Needs::Login);
        assert_eq!(scoped(Method::GET, "/api/v1/no-such-route"), Needs::Login);
        assert_eq!(needs(&Method::GET, None), None);
        assert_eq!(needs(&Method::POST, Some("/api/v1/auth/login")), Some(Needs::Public));
    }
}
