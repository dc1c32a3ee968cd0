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

/// How big and how deep a client's message may be.
#[derive(Debug, Clone, Copy)]
pub struct MessageLimits {
    pub max_bytes: usize,
    pub max_depth: usize,
}

/// Whether `text` nests arrays and objects deeper than `max` (brackets inside strings do not
/// count). Checked before parsing, so the limit is `limits.max_json_depth` rather than
/// serde_json's fixed 128, and a too-deep message is told so instead of "parse error".
pub fn too_deep(text: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The answer to a message nested deeper than `max`: `-32600`, as it is valid JSON.
pub fn too_deep_reply<Req, Resp, Not>(max: usize) -> JsonRpcMessage<Req, Resp, Not> {
    JsonRpcMessage::error(
        ErrorData::invalid_request(
            format!("Invalid Request: JSON nested deeper than limits.max_json_depth ({max})"),
            None,
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!too_deep(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(too_deep(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!too_deep(br#"{"a": "[[[[{{{{ \" [[[["}"#, 1));
        assert!(too_deep(&[b'['; 65], 64));
    }
}
