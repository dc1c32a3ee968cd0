//! JSON-RPC framing errors, shared by every transport that parses messages itself.

use rmcp::{
    ErrorData,
    model::{ErrorCode, JsonRpcMessage, RequestId},
};

/// The answer to a frame that did not parse: `-32700` for text that is not JSON, `-32600`
/// (with the frame's `id` when it has one) for JSON that is not a JSON-RPC message.
pub fn error_reply<Req, Resp, Not>(
    body: &[u8],
    error: &serde_json::Error,
) -> JsonRpcMessage<Req, Resp, Not> {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => JsonRpcMessage::error(
            ErrorData::new(
                ErrorCode::PARSE_ERROR,
                format!("Parse error: {error}"),
                None,
            ),
            None,
        ),
        Category::Data => {
            let id = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|value| value.get("id").cloned())
                .and_then(|id| serde_json::from_value::<RequestId>(id).ok());
            JsonRpcMessage::error(
                ErrorData::invalid_request(format!("Invalid Request: {error}"), None),
                id,
            )
        }
    }
}
