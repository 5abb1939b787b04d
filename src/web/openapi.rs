//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::problem::{FieldError, Problem};
use super::routes::{auth, ops, tasks, users};

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
        tasks::list::list, tasks::create, tasks::list::trash, tasks::get_task, tasks::update, tasks::replace,
        tasks::remove, tasks::restore, tasks::toggle, tasks::complete, tasks::reminders::history,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth, &UserScopedAliases),
    tags(
        (name = "auth", description = "Accounts and access tokens"),
        (name = "users", description = "The caller's own account"),
        (name = "tasks", description = "The caller's tasks; also served under /users/{user_id}"),
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

/// Documents `/users/{user_id}/tasks…`: the same operations as `/tasks…`, plus the path
/// parameter and the 403 for anyone but the caller.
struct UserScopedAliases;

impl Modify for UserScopedAliases {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let task_paths: Vec<_> = openapi
            .paths
            .paths
            .iter()
            .filter(|(path, _)| path.starts_with("/api/v1/tasks"))
            .map(|(path, item)| (path.replacen("/api/v1/", "/api/v1/users/{user_id}/", 1), item.clone()))
            .collect();
        let user_id = ParameterBuilder::new()
            .name("user_id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The caller's own id, or `me`"))
            .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String)))
            .build();
        let forbidden = ResponseBuilder::new()
            .description("`user_id` is not the caller")
            .content(
                "application/problem+json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
            )
            .build();
        for (path, mut item) in task_paths {
            for operation in operations(&mut item) {
                operation.parameters.get_or_insert_with(Vec::new).insert(0, user_id.clone());
                operation.responses.responses.insert("403".into(), forbidden.clone().into());
                operation.operation_id = operation.operation_id.as_ref().map(|id| format!("{id}_for_user"));
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
