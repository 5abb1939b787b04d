//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::problem::{FieldError, Problem};
use super::routes::ops;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Todo API",
        description = "A multi-user task service: priorities, tags, due dates, reminders and recurrence.",
    ),
    paths(ops::health, ops::ready, ops::prometheus),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags((name = "operations", description = "Liveness, readiness and metrics")),
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
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
