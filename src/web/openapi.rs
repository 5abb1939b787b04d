//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::{FieldError, Problem};
use super::routes::{auth, ops, users};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Todo API",
        description = "A multi-user task service: priorities, tags, due dates, reminders and recurrence.",
    ),
    paths(
        ops::health, ops::ready, ops::prometheus,
        auth::register, auth::login, auth::logout,
        users::me, users::update_me, users::delete_me, users::export,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and access tokens"),
        (name = "users", description = "The caller's own account"),
        (name = "operations", description = "Liveness, readiness and metrics"),
    ),
)]
pub struct ApiDoc;

/// Declares the bearer scheme that protected routes reference as `bearer`.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}
