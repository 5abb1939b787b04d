//! JSON-RPC 2.0 as MCP uses it over Streamable HTTP: one message per POST (the 2025-06-18
//! revision dropped batches, and this server refuses them in every revision), a request answered
//! with one response, a notification or a client's response answered `202` with no body.

use serde_json::{Value, json};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
/// MCP's code for a `resources/read` of a resource that does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// One message from the client.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// A request: answer it, echoing `id`.
    Request { id: Value, method: String, params: Value },
    /// A notification, or the client's answer to a server request: nothing to answer.
    Accepted,
}

/// Why a body is not one message this server takes; answered with `id: null`.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub code: i64,
    pub message: &'static str,
}

pub fn parse(body: &[u8]) -> Result<Message, Refused> {
    // A repeated key is malformed here as on every REST route: one body, one meaning.
    let value = crate::web::json::from_slice(body).map_err(|_| Refused {
        code: PARSE_ERROR,
        message: "The body is not JSON, or an object in it repeats a key.",
    })?;
    let invalid = |message| Refused { code: INVALID_REQUEST, message };
    let Value::Object(mut map) = value else {
        return Err(match value {
            Value::Array(_) => invalid("Send one JSON-RPC message per request; batches are not supported."),
            _ => invalid("A JSON-RPC message is an object."),
        });
    };
    if map.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid("`jsonrpc` must be \"2.0\"."));
    }
    let method = match map.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return Err(invalid("`method` must be a string.")),
        // A response to a request of ours; this server sends none, so there is nothing to match.
        None if map.contains_key("result") || map.contains_key("error") => return Ok(Message::Accepted),
        None => return Err(invalid("A JSON-RPC message needs `method`, or `result` or `error`.")),
    };
    let params = match map.remove("params") {
        None => Value::Object(Default::default()),
        Some(params @ Value::Object(_)) => params,
        Some(_) => return Err(invalid("`params` must be an object.")),
    };
    match map.remove("id") {
        None => Ok(Message::Accepted),
        // MCP: an id is a string or an integer, never null.
        Some(id @ (Value::String(_) | Value::Number(_))) => Ok(Message::Request { id, method, params }),
        Some(_) => Err(invalid("`id` must be a string or a number.")),
    }
}

pub fn result(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "result": result })
}

pub fn error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_notifications_and_responses_are_told_apart() {
        let request = parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            request,
            Message::Request { id: json!(7), method: "tools/list".into(), params: json!({}) }
        );
        let notification = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        assert_eq!(notification.unwrap(), Message::Accepted);
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap(), Message::Accepted);
    }

    #[test]
    fn malformed_messages_are_refused_with_the_json_rpc_code() {
        assert_eq!(parse(b"{not json").unwrap_err().code, PARSE_ERROR);
        let repeated = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#;
        assert_eq!(parse(repeated).unwrap_err().code, PARSE_ERROR);
        assert_eq!(parse(b"[]").unwrap_err().code, INVALID_REQUEST);
        assert_eq!(parse(br#"{"id":1,"method":"ping"}"#).unwrap_err().code, INVALID_REQUEST);
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).unwrap_err().code,
            INVALID_REQUEST
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}"#).unwrap_err().code,
            INVALID_REQUEST
        );
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":1}"#).unwrap_err().code, INVALID_REQUEST);
    }
}
