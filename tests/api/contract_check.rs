//! The OpenAPI document as the suite's oracle: every response the tests receive from the app is
//! checked against it, so a drift between what the server answers and what the document
//! promises fails a test rather than a client generated from the document.
//!
//! [`Contract::check`] is the pure check; [`CheckedClient`] is the test client that runs it on
//! every response from the app it was made for, so call sites keep reqwest's API unchanged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use reqwest::header::{ALLOW, CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{IntoUrl, Method, ResponseBuilderExt, StatusCode};
use serde_json::Value;

/// The document the app serves, compiled once per test process.
pub static DOCUMENT: LazyLock<Contract> = LazyLock::new(|| {
    let document = serde_json::to_value(todo::web::openapi::document()).expect("the document serialises");
    Contract::new(document).unwrap_or_else(|error| panic!("the OpenAPI document does not compile: {error}"))
});

/// Where the checker keeps the document while compiling its schemas; `$ref`s inside it
/// (`#/components/schemas/...`) resolve against this resource.
const DOCUMENT_URL: &str = "urn:todo:openapi";

pub struct Contract {
    document: Value,
    /// Every path template, split into segments: `None` stands for a `{param}` segment.
    templates: Vec<(String, Vec<Option<String>>)>,
    schemas: boon::Schemas,
    /// The compiled schema of each response content, by JSON pointer into the document.
    compiled: HashMap<String, boon::SchemaIndex>,
}

impl Contract {
    /// Compiles every response schema of `document`, an OpenAPI 3.1 document.
    pub fn new(document: Value) -> Result<Self, String> {
        let mut compiler = boon::Compiler::new();
        // OpenAPI 3.1 schemas are draft 2020-12; `format` asserts so that a `date-time` or
        // `uuid` the server writes differently is a drift too (unknown formats are ignored).
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler.add_resource(DOCUMENT_URL, document.clone()).map_err(|e| format!("{e:#}"))?;
        let paths = document["paths"].as_object().into_iter().flatten();
        let templates = paths
            .map(|(template, _)| {
                let segments = template.split('/').map(|s| (!s.starts_with('{')).then(|| s.to_owned()));
                (template.clone(), segments.collect())
            })
            .collect();
        let mut contract =
            Self { document, templates, schemas: boon::Schemas::new(), compiled: HashMap::new() };
        for at in contract.response_schemas() {
            let location = format!("{DOCUMENT_URL}#{}", fragment(&at));
            let index =
                compiler.compile(&location, &mut contract.schemas).map_err(|e| format!("{at}: {e:#}"))?;
            contract.compiled.insert(at, index);
        }
        Ok(contract)
    }

    /// The JSON pointer of every response content's schema.
    fn response_schemas(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (template, item) in self.document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                for status in operation["responses"].as_object().into_iter().flatten().map(|(k, _)| k) {
                    let (at, response) =
                        self.resolve(pointer(&["paths", template, method, "responses", status]));
                    for media_type in response["content"].as_object().into_iter().flatten().map(|(k, _)| k) {
                        let schema = format!("{at}{}", pointer(&["content", media_type, "schema"]));
                        if self.document.pointer(&schema).is_some() {
                            found.push(schema);
                        }
                    }
                }
            }
        }
        found
    }

    /// Checks one answer to `method path`. `body` is `None` for a stream, which is checked for
    /// its status and headers only: it may never end, so it is never read here.
    ///
    /// A path the document does not describe is not checked (the tests probe unknown paths on
    /// purpose); a described path answered with a method or status it does not list is a drift,
    /// except for what HTTP itself implies: HEAD answers as the documented GET does, without
    /// content (RFC 9110, 9.3.2), and a method the path does not have is a 405 whose `Allow`
    /// names the methods the document lists.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        status: StatusCode,
        headers: &HeaderMap,
        mut body: Option<&[u8]>,
    ) -> Result<(), String> {
        let Some(template) = self.template(path) else { return Ok(()) };
        let operation = format!("{method} {template}");
        let drift = |what: String| Err(format!("{operation} answered {status} for {path}: {what}"));
        let item = &self.document["paths"][template];
        let has = |method: &str| item[method]["responses"].is_object();
        let mut method = method.as_str().to_ascii_lowercase();
        if status == StatusCode::METHOD_NOT_ALLOWED && !has(&method) {
            return self.check_allow(item, headers).or_else(drift);
        }
        if method == "head" && !has("head") && has("get") {
            (method, body) = ("get".into(), None);
        }
        if !has(&method) {
            return drift("the document has no such operation".into());
        }
        let responses = &item[method.as_str()]["responses"];
        let code = status.as_str();
        let range = format!("{}XX", &code[..1]);
        let Some(status_key) = [code, &range, "default"].into_iter().find(|key| responses.get(key).is_some())
        else {
            let documented: Vec<_> = responses.as_object().into_iter().flatten().map(|(k, _)| k).collect();
            return drift(format!("the status is not documented (documented: {documented:?})"));
        };
        let (at, response) = self.resolve(pointer(&["paths", template, &method, "responses", status_key]));

        for name in response["headers"].as_object().into_iter().flatten().map(|(name, _)| name) {
            let (_, header) = self.resolve(format!("{at}{}", pointer(&["headers", name])));
            if header["required"] == true && !headers.contains_key(name.as_str()) {
                return drift(format!("the required header {name} is missing"));
            }
        }

        let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let essence = content_type.map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let content = response["content"].as_object().filter(|c| !c.is_empty());
        let Some(content) = content else {
            return match (body, essence) {
                (Some(body), _) if !body.is_empty() => {
                    drift(format!("the document declares no body, got {}", excerpt(body)))
                }
                (_, Some(essence)) => {
                    drift(format!("the document declares no body, got Content-Type {essence}"))
                }
                _ => Ok(()),
            };
        };
        let declared: Vec<_> = content.keys().collect();
        let Some(essence) = essence else {
            return drift(format!("no Content-Type; the document declares {declared:?}"));
        };
        let Some(media_type) = content.keys().find(|declared| media_type_matches(declared, &essence)) else {
            return drift(format!("Content-Type {essence} is not among the declared {declared:?}"));
        };

        let schema_at = format!("{at}{}", pointer(&["content", media_type, "schema"]));
        let encoded = headers.get(CONTENT_ENCODING).is_some_and(|v| v != "identity");
        let is_json = essence == "application/json" || essence.ends_with("+json");
        // Only JSON bodies have a schema to check here; a compressed one would need inflating
        // first, and the test client asks for no compression.
        let (Some(body), Some(&index), true, false) = (body, self.compiled.get(&schema_at), is_json, encoded)
        else {
            return Ok(());
        };
        let instance: Value = match serde_json::from_slice(body) {
            Ok(instance) => instance,
            Err(error) => return drift(format!("the body is not JSON ({error}): {}", excerpt(body))),
        };
        self.schemas.validate(&instance, index).or_else(|error| {
            let schema = self.document.pointer(&schema_at).map(Value::to_string).unwrap_or_default();
            drift(format!("the body does not match {schema}: {error}\nbody: {}", excerpt(body)))
        })
    }

    /// Whether a 405's `Allow` names exactly the methods the document lists for the path, HEAD
    /// being implied by GET.
    fn check_allow(&self, item: &Value, headers: &HeaderMap) -> Result<(), String> {
        let documented: BTreeSet<String> = item
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, operation)| operation["responses"].is_object())
            .map(|(method, _)| method.to_ascii_uppercase())
            .collect();
        let allow = headers.get(ALLOW).and_then(|v| v.to_str().ok()).ok_or("a 405 without Allow")?;
        let allowed: BTreeSet<String> = allow
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !(m == "HEAD" && documented.contains("GET")))
            .collect();
        if allowed == documented {
            Ok(())
        } else {
            Err(format!("405 with Allow: {allow}, but the document lists {documented:?}"))
        }
    }

    /// The most specific template matching `path`: at the first segment where two templates
    /// differ, a literal beats a parameter, so `/tasks/trash` wins over `/tasks/{id}`.
    fn template(&self, path: &str) -> Option<&str> {
        let segments: Vec<_> = path.split('/').collect();
        self.templates
            .iter()
            .filter(|(_, template)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
            })
            .max_by_key(|(_, template)| template.iter().map(Option::is_some).collect::<Vec<_>>())
            .map(|(name, _)| name.as_str())
    }

    /// Follows local `$ref`s (a response or header may be one) from the JSON pointer `at`.
    fn resolve(&self, mut at: String) -> (String, &Value) {
        loop {
            let value = self.document.pointer(&at).unwrap_or(&Value::Null);
            match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
                Some(target) => at = target.to_owned(),
                None => return (at, value),
            }
        }
    }
}

/// A JSON pointer (RFC 6901) to the given keys.
fn pointer(keys: &[&str]) -> String {
    keys.iter().map(|key| format!("/{}", key.replace('~', "~0").replace('/', "~1"))).collect()
}

/// A JSON pointer as a URL fragment: the braces of `{id}` are not allowed there unescaped.
fn fragment(pointer: &str) -> String {
    pointer.replace('%', "%25").replace('{', "%7B").replace('}', "%7D")
}

/// Whether a response `essence` (`type/subtype`) is covered by a declared media type, which may
/// be a range such as `text/*`.
fn media_type_matches(declared: &str, essence: &str) -> bool {
    let declared = declared.to_ascii_lowercase();
    match declared.strip_suffix("/*") {
        Some(kind) => kind == "*" || essence.split('/').next() == Some(kind),
        None => declared == essence,
    }
}

/// The start of a body, for a failure message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(500) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], body.len()),
        None => text.into_owned(),
    }
}

/// reqwest's client, but every response from the app it was made for is checked against the
/// document before the test sees it; a drift panics with the operation, status and mismatch.
/// Requests elsewhere (the worker's metrics port, another server) pass through unchecked: the
/// document describes this app only.
#[derive(Clone)]
pub struct CheckedClient {
    inner: reqwest::Client,
    /// The app's origin, `http://host:port`.
    app: Arc<str>,
}

impl CheckedClient {
    /// A client for the app at `address` that leaves redirects to the test.
    pub fn for_app(address: &str) -> Self {
        let inner = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self::wrapping(inner, address)
    }

    /// Checks the answers of the app at `address` to a client the test built (with a timeout,
    /// say).
    pub fn wrapping(inner: reqwest::Client, address: &str) -> Self {
        Self { inner, app: origin(address) }
    }

    /// The same connection pool, checking the answers of the app at `address` instead.
    pub fn for_other_app(&self, address: &str) -> Self {
        Self::wrapping(self.inner.clone(), address)
    }

    pub fn get(&self, url: impl IntoUrl) -> CheckedRequest {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: impl IntoUrl) -> CheckedRequest {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: impl IntoUrl) -> CheckedRequest {
        self.request(Method::PUT, url)
    }

    pub fn patch(&self, url: impl IntoUrl) -> CheckedRequest {
        self.request(Method::PATCH, url)
    }

    pub fn delete(&self, url: impl IntoUrl) -> CheckedRequest {
        self.request(Method::DELETE, url)
    }

    pub fn request(&self, method: Method, url: impl IntoUrl) -> CheckedRequest {
        // Benchmarks share this harness and time the server, not the checker: only the test
        // build checks.
        let app = cfg!(test).then(|| self.app.clone());
        CheckedRequest { inner: self.inner.request(method, url), app }
    }
}

fn origin(address: &str) -> Arc<str> {
    let url = reqwest::Url::parse(address).expect("the app's address is a URL");
    url.origin().ascii_serialization().into()
}

/// reqwest's request builder, with the methods the tests use (add more as they need them); see
/// [`CheckedClient`].
pub struct CheckedRequest {
    inner: reqwest::RequestBuilder,
    /// The origin whose answers are checked; `None` checks nothing.
    app: Option<Arc<str>>,
}

impl CheckedRequest {
    fn map(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        Self { inner: f(self.inner), ..self }
    }

    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|r| r.header(key, value))
    }

    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.map(|r| r.bearer_auth(token))
    }

    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|r| r.body(body))
    }

    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
        self.map(|r| r.json(json))
    }

    pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.map(|r| r.form(form))
    }

    /// Leaves this request's answer unchecked, for the few the document rightly says nothing
    /// about (refusals at the HTTP layer before any route, CORS preflights), and for load that a
    /// test timing the server generates, where checking would spend the client's CPU on the
    /// server's cores. Every use says why.
    pub fn outside_the_contract(self) -> Self {
        Self { app: None, ..self }
    }

    /// Sends the request; an answer from the app that the document does not describe panics.
    /// The body is read here (streams excepted) and handed back in a rebuilt response.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let (client, request) = self.inner.build_split();
        let request = request?;
        let (method, url) = (request.method().clone(), request.url().clone());
        let response = client.execute(request).await?;
        if self.app.is_none_or(|app| *app != url.origin().ascii_serialization()) {
            return Ok(response);
        }
        let (status, headers) = (response.status(), response.headers().clone());
        let check = |body: Option<&[u8]>| {
            if let Err(drift) = DOCUMENT.check(&method, url.path(), status, &headers, body) {
                panic!("contract drift: {drift}");
            }
        };
        let streamed =
            headers.get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if streamed {
            check(None);
            return Ok(response);
        }
        let version = response.version();
        let body = response.bytes().await?;
        check(Some(&body));
        let mut rebuilt = http::Response::builder().status(status).version(version).url(url);
        *rebuilt.headers_mut().expect("a valid response head") = headers;
        Ok(rebuilt.body(body).expect("a valid response").into())
    }
}
