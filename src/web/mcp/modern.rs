//! The 2026-07-28 revision: no handshake. The client probes `server/discover`, then every request
//! carries its protocol version and capabilities in `params._meta`, mirrored in the
//! `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers, and every result says
//! `resultType` (list and read results also carry caching hints). The checks follow the order the
//! official SDK's server applies (`mcp.shared.inbound`): the envelope, then the headers, then the
//! version.

use actix_web::http::header::HeaderMap;
use base64::Engine;
use serde_json::{Value, json};

use super::rpc;

/// The per-request-envelope revisions this server speaks.
pub const VERSIONS: &[&str] = &["2026-07-28"];
pub const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Whether a request speaks the envelope revision rather than the handshake ones.
pub fn is_modern(method: &str, params: &Value, headers: &HeaderMap) -> bool {
    let header = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok());
    method == "server/discover"
        || params["_meta"].get(VERSION_KEY).is_some()
        || header.is_some_and(|v| VERSIONS.contains(&v.trim()))
}

/// Why a modern request is refused: its JSON-RPC error code, message and data.
#[derive(Debug, PartialEq)]
pub struct Rejection {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Rejection {
    /// The HTTP status the SDK's server answers this code with.
    pub fn status(&self) -> u16 {
        status_of(self.code)
    }
}

pub fn status_of(code: i64) -> u16 {
    match code {
        rpc::METHOD_NOT_FOUND => 404,
        rpc::PARSE_ERROR
        | rpc::INVALID_REQUEST
        | rpc::INVALID_PARAMS
        | HEADER_MISMATCH
        | -32021
        | UNSUPPORTED_PROTOCOL_VERSION => 400,
        _ => 200,
    }
}

pub fn check(method: &str, params: &Value, headers: &HeaderMap) -> Result<(), Rejection> {
    let reject = |code, message: &str| Err(Rejection { code, message: message.to_owned(), data: None });
    let Some(meta) = params["_meta"].as_object() else {
        return reject(
            rpc::INVALID_PARAMS,
            "params._meta must be an object carrying the protocol version and client capabilities",
        );
    };
    let (Some(version), Some(_)) = (meta.get(VERSION_KEY), meta.get(CAPABILITIES_KEY)) else {
        return reject(
            rpc::INVALID_PARAMS,
            &format!("params._meta must carry {VERSION_KEY} and {CAPABILITIES_KEY}"),
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("mcp-protocol-version").is_none_or(|h| Some(h) != version.as_str()) {
        return reject(
            HEADER_MISMATCH,
            "mcp-protocol-version header does not match the request envelope's protocol version",
        );
    }
    if header("mcp-method") != Some(method) {
        return reject(HEADER_MISMATCH, "mcp-method header does not match the request body's method");
    }
    let named = match method {
        "tools/call" => params.get("name"),
        "resources/read" => params.get("uri"),
        _ => None,
    };
    if let Some(Value::String(named)) = named
        && header("mcp-name").and_then(decode_header_value).as_deref() != Some(named.as_str())
    {
        return reject(HEADER_MISMATCH, "mcp-name header does not match the request body");
    }
    let Some(version) = version.as_str() else {
        return reject(rpc::INVALID_PARAMS, "the protocol-version envelope value must be a string");
    };
    if !VERSIONS.contains(&version) {
        return Err(Rejection {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: "Unsupported protocol version".into(),
            data: Some(json!({ "supported": VERSIONS, "requested": version })),
        });
    }
    Ok(())
}

/// A header value as the SDK encodes it: verbatim, or `=?base64?…?=` for what is not ASCII.
fn decode_header_value(value: &str) -> Option<String> {
    let Some(payload) = value.strip_prefix("=?base64?").and_then(|v| v.strip_suffix("?=")) else {
        return Some(value.to_owned());
    };
    let decoded = base64::engine::general_purpose::STANDARD.decode(payload).ok()?;
    String::from_utf8(decoded).ok()
}

/// Marks a result as the revision wants it: `resultType`, and caching hints on lists and reads.
/// The hints forbid caching: answers depend on the token and change with every write.
pub fn decorate(method: &str, mut answer: Value) -> Value {
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result.insert("resultType".into(), json!("complete"));
        if matches!(
            method,
            "server/discover"
                | "tools/list"
                | "resources/list"
                | "resources/templates/list"
                | "resources/read"
        ) {
            result.insert("ttlMs".into(), json!(0));
            result.insert("cacheScope".into(), json!("private"));
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn params(version: &str) -> Value {
        json!({"name": "find_tasks", "_meta": {VERSION_KEY: version, CAPABILITIES_KEY: {}}})
    }

    #[test]
    fn the_envelope_then_the_headers_then_the_version_are_checked() {
        let good = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "find_tasks"),
        ]);
        assert_eq!(check("tools/call", &params("2026-07-28"), &good), Ok(()));
        assert_eq!(check("tools/call", &json!({}), &good).unwrap_err().code, rpc::INVALID_PARAMS);
        let other_name = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "agenda"),
        ]);
        assert_eq!(
            check("tools/call", &params("2026-07-28"), &other_name).unwrap_err().code,
            HEADER_MISMATCH
        );
        let later = headers(&[
            ("mcp-protocol-version", "2099-01-01"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "find_tasks"),
        ]);
        let rejection = check("tools/call", &params("2099-01-01"), &later).unwrap_err();
        assert_eq!((rejection.code, rejection.status()), (UNSUPPORTED_PROTOCOL_VERSION, 400));
        assert_eq!(decode_header_value("=?base64?w6k=?="), Some("é".to_owned()));
    }
}
