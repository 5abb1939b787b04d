//! Task request bodies. Bodies are read field by field from the JSON object, so every problem,
//! including a wrong JSON type, is reported against the field that has it. The fields, their
//! parsers and their schemas all come from the one table in `domain/fields.rs`.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::fields::{parse_instant, parse_parent, parse_position, parse_project};
use crate::domain::{
    Description, Invalid, Patch, Priority, RecurrenceAnchor, RecurrenceRule, Tags, TaskChanges, TaskFields,
    TimeZone, Title,
};

/// A task as POST and PUT take it: `title` is required; left-out fields take their defaults.
pub struct TaskInput;

/// A merge patch of a task (PATCH): only the fields sent change, and `null` clears a nullable one.
pub struct TaskPatch;

/// [`TaskInput`] as a bulk `create` takes it: `parent_id` may also name an earlier create's `ref`.
pub struct BulkTaskInput;

/// [`TaskPatch`] as a bulk `update` takes it: `parent_id` may also name an earlier create's `ref`.
pub struct BulkTaskPatch;

/// A bulk operation's `"$<ref>"`, as `bulk::resolve_refs` reads it (the `ref` pattern after `$`).
const PARENT_REF_PATTERN: &str = "^\\$[A-Za-z0-9_-]{1,50}$";

/// The web layer's view of the field table: the body parser, the field names and the schemas.
macro_rules! define_form {
    ($( $(#[doc = $doc:literal])* $name:ident : $ty:ty [$kind:ident] $shape:literal |$raw:ident : $raw_ty:ty| $parse:expr,
        stored |$t:ident| $stored:expr, schema $schema:expr,
        column $col_ty:literal $(=> $col_select:literal)? = |$v:ident| $col_value:expr; )*) => {
        /// The fields a task body may carry.
        pub const FIELDS: &[&str] = &[$(stringify!($name)),*];

        /// Reads a body into its fields as sent, each left out, null or valid.
        fn read_fields(read: &mut Reader<'_>) -> TaskChanges {
            TaskChanges { $( $name: read.field(stringify!($name), $shape, |$raw: $raw_ty| $parse), )* }
        }

        /// Each field's name, description, kind and schema, in the table's order.
        fn properties() -> Vec<(&'static str, String, &'static str, Value)> {
            let describe = |docs: &[&str]| docs.iter().map(|d| d.trim()).collect::<Vec<_>>().join(" ");
            vec![$( (stringify!($name), describe(&[$($doc),*]), stringify!($kind), $schema), )*]
        }
    };
}

crate::task_fields!(define_form);

/// A parsed body.
pub struct TaskForm(TaskChanges);

impl TaskForm {
    pub fn parse(body: Value) -> Result<Self, Vec<Invalid>> {
        let Value::Object(map) = body else {
            return Err(vec![Invalid::new("body", "must be a JSON object")]);
        };
        let mut errors: Vec<Invalid> = map
            .keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .map(|k| Invalid::new(k.clone(), "is not a task field"))
            .collect();
        let changes = read_fields(&mut Reader { map: &map, errors: &mut errors });
        if errors.is_empty() { Ok(Self(changes)) } else { Err(errors) }
    }

    /// A whole task, for create and replace: left-out fields take their defaults.
    pub fn into_fields(self) -> Result<TaskFields<Option<TimeZone>>, Vec<Invalid>> {
        self.0.into_fields()
    }

    /// A merge patch.
    pub fn into_changes(self) -> Result<TaskChanges, Vec<Invalid>> {
        self.0.check_patch()?;
        Ok(self.0)
    }
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    errors: &'a mut Vec<Invalid>,
}

impl Reader<'_> {
    fn field<Raw: DeserializeOwned, T>(
        &mut self,
        name: &'static str,
        expected: &str,
        parse: impl FnOnce(Raw) -> Result<T, Invalid>,
    ) -> Patch<T> {
        match self.map.get(name) {
            None => Patch::Absent,
            Some(Value::Null) => Patch::Null,
            Some(value) => match serde_json::from_value::<Raw>(value.clone()) {
                Err(_) => {
                    self.errors.push(Invalid::new(name, format!("must be {expected}")));
                    Patch::Absent
                }
                Ok(raw) => match parse(raw) {
                    Ok(parsed) => Patch::Value(parsed),
                    Err(invalid) => {
                        self.errors.push(invalid);
                        Patch::Absent
                    }
                },
            },
        }
    }
}

// The schemas the table names, as JSON Schema.

fn text(min: Option<usize>, max: Option<usize>) -> Value {
    let mut schema = json!({"type": "string"});
    if let Some(min) = min {
        schema["minLength"] = json!(min);
    }
    if let Some(max) = max {
        schema["maxLength"] = json!(max);
    }
    schema
}

fn integer(min: i64, max: i64) -> Value {
    json!({"type": "integer", "minimum": min, "maximum": max})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn instant() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn tag_list(max: usize) -> Value {
    json!({"type": "array", "items": {"type": "string"}, "maxItems": max})
}

fn named<T: ToSchema>() -> Value {
    json!({"$ref": format!("#/components/schemas/{}", T::name())})
}

/// The object schema of a body: `whole` for POST and PUT, or a merge patch. A field that may be
/// sent as `null` says so in its type. `in_batch`: a bulk operation's body, whose `parent_id`
/// may be a `"$<ref>"` as well as a task id (a generated client would refuse it otherwise).
fn body_schema(whole: bool, in_batch: bool) -> RefOr<Schema> {
    let mut fields = Map::new();
    let mut required = Vec::new();
    for (name, description, kind, mut schema) in properties() {
        let nullable = match kind {
            "nullable" => true,
            "cleared" => !whole,
            _ => false,
        };
        if nullable && let Some(ty) = schema.get("type").cloned() {
            schema["type"] = json!([ty, "null"]);
        }
        if in_batch && name == "parent_id" {
            let reference = json!({"type": "string", "pattern": PARENT_REF_PATTERN,
                                   "description": "`$` and the `ref` of an earlier create in the batch"});
            schema = json!({"anyOf": [schema, reference]});
        }
        if !description.is_empty() {
            schema["description"] = json!(description);
        }
        if whole && kind == "required" {
            required.push(name);
        }
        fields.insert(name.to_owned(), schema);
    }
    let schema = json!({"type": "object", "properties": fields, "required": required,
                        "additionalProperties": false});
    // Built from JSON this file writes: a failure is a bug in these helpers, caught by tests.
    serde_json::from_value(schema).map_or_else(|_| RefOr::Ref(Ref::new("#/invalid")), RefOr::T)
}

fn enum_schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((Priority::name().into_owned(), Priority::schema()));
    schemas.push((RecurrenceAnchor::name().into_owned(), RecurrenceAnchor::schema()));
}

impl PartialSchema for TaskInput {
    fn schema() -> RefOr<Schema> {
        body_schema(true, false)
    }
}

impl ToSchema for TaskInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TaskInput")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        enum_schemas(schemas);
    }
}

impl PartialSchema for TaskPatch {
    fn schema() -> RefOr<Schema> {
        body_schema(false, false)
    }
}

impl ToSchema for TaskPatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("TaskPatch")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        enum_schemas(schemas);
    }
}

impl PartialSchema for BulkTaskInput {
    fn schema() -> RefOr<Schema> {
        body_schema(true, true)
    }
}

impl ToSchema for BulkTaskInput {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BulkTaskInput")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        enum_schemas(schemas);
    }
}

impl PartialSchema for BulkTaskPatch {
    fn schema() -> RefOr<Schema> {
        body_schema(false, true)
    }
}

impl ToSchema for BulkTaskPatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("BulkTaskPatch")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        enum_schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_body_schemas_list_every_field_and_build() {
        for (whole, in_batch) in [(true, false), (false, false), (true, true), (false, true)] {
            let schema = serde_json::to_value(body_schema(whole, in_batch)).unwrap();
            let properties = schema["properties"].as_object().expect("an object schema");
            assert_eq!(properties.len(), FIELDS.len());
            assert_eq!(schema["required"] == json!(["title"]), whole);
        }
    }

    #[test]
    fn a_patch_refuses_null_where_a_field_cannot_be_cleared() {
        let errors = TaskForm::parse(json!({"title": null, "tags": null}))
            .and_then(TaskForm::into_changes)
            .unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field.as_ref()).collect::<Vec<_>>(), ["title"]);
    }
}
