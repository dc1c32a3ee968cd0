//! JSON-RPC text shared by every transport that reads or writes messages itself: framing
//! errors, answers written as text, and the depth check.

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

/// A message from the peer that did not parse but answers one of our requests (it has an
/// `id` and a `result` or `error`, once read leniently): the error that request gets at once,
/// naming `peer`, instead of waiting for its deadline for an answer that came and was unusable.
/// `None` when the text is no answer: a request or notification we cannot read, a banner, a
/// log line.
pub fn unreadable_answer<Req, Resp, Not>(
    text: &[u8],
    error: &serde_json::Error,
    peer: &str,
) -> Option<JsonRpcMessage<Req, Resp, Not>> {
    let lenient = String::from_utf8_lossy(text);
    let serde_json::Value::Object(message) = serde_json::from_str(&lenient).ok()? else {
        return None;
    };
    if message.contains_key("method")
        || !(message.contains_key("result") || message.contains_key("error"))
    {
        return None;
    }
    let id = serde_json::from_value::<RequestId>(message.get("id")?.clone()).ok()?;
    let reason = if std::str::from_utf8(text).is_err() {
        "it is not valid UTF-8".to_owned()
    } else {
        error.to_string()
    };
    Some(JsonRpcMessage::error(
        ErrorData::internal_error(
            format!("{peer} sent an answer that cannot be read ({reason})"),
            None,
        ),
        Some(id),
    ))
}

/// Whether `text`, which did not parse, was meant as a JSON-RPC message (an object that names
/// `"jsonrpc"` near its start) rather than a stray line: one that cannot be read even
/// leniently means the framing is broken, and whatever it answered will never come.
pub fn meant_as_jsonrpc(text: &[u8]) -> bool {
    let start = text.iter().position(|byte| !byte.is_ascii_whitespace());
    let Some(start) = start.filter(|start| text[*start] == b'{') else {
        return false;
    };
    let head = &text[start..text.len().min(start + 64)];
    memchr::memmem::find(head, b"\"jsonrpc\"").is_some()
}

/// The answer to request `id` (its JSON text) with `result` (a JSON object's text), in one
/// allocation of its exact length: it is written for every call.
pub fn result_text(id: &str, result: &str) -> String {
    [
        "{\"jsonrpc\":\"2.0\",\"id\":",
        id,
        ",\"result\":",
        result,
        "}",
    ]
    .concat()
}

/// The answer to request `id` (its JSON text) with `error`.
pub fn error_text(id: &str, error: &ErrorData) -> String {
    // An error of strings and JSON values always serializes.
    let error = serde_json::to_string(error).unwrap_or_default();
    [
        "{\"jsonrpc\":\"2.0\",\"id\":",
        id,
        ",\"error\":",
        &error,
        "}",
    ]
    .concat()
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
    let mut at = 0;
    while let Some(&byte) = text.get(at) {
        match byte {
            b'"' => at = string_end(text, at + 1),
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    false
}

/// Where the string whose text starts at `from` ends: its closing quote, or the end of
/// `text`. Strings are most of a message's bytes; `memchr` skips them many bytes at a time,
/// where a loop byte by byte cost the gateway 3,600 instructions per call.
fn string_end(text: &[u8], mut from: usize) -> usize {
    while let Some(rest) = text.get(from..) {
        match memchr::memchr2(b'"', b'\\', rest) {
            // An escape: the byte after it is the escaped one, a quote included.
            Some(offset) if rest[offset] == b'\\' => from += offset + 2,
            Some(offset) => return from + offset,
            None => break,
        }
    }
    text.len()
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

    type Message = JsonRpcMessage<serde_json::Value, serde_json::Value, serde_json::Value>;

    fn unreadable(text: &[u8]) -> Option<Message> {
        let error = serde_json::from_slice::<rmcp::model::ServerJsonRpcMessage>(text)
            .expect_err("the text does not parse");
        unreadable_answer(text, &error, "upstream x")
    }

    #[test]
    fn an_answer_that_cannot_be_read_fails_its_request() {
        let bad_utf8 = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"caf\xe9\"}]}}";
        let Some(JsonRpcMessage::Error(answer)) = unreadable(bad_utf8) else {
            panic!("not an error answer");
        };
        assert_eq!(answer.id, Some(RequestId::Number(7)));
        assert!(
            answer.error.message.contains("upstream x") && answer.error.message.contains("UTF-8"),
            "{}",
            answer.error.message
        );
        let bad_error = br#"{"jsonrpc":"2.0","id":"a","error":{"code":"x"}}"#;
        assert!(
            unreadable(bad_error).is_some(),
            "an error of the wrong shape"
        );
    }

    #[test]
    fn what_is_no_answer_is_left_alone() {
        assert!(unreadable(b"Server listening on stdio").is_none());
        let request = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\xff\"}";
        assert!(unreadable(request).is_none());
        let half = br#"{"jsonrpc":"2.0","id":3,"result":{"content":["#;
        assert!(unreadable(half).is_none());
        assert!(meant_as_jsonrpc(half));
        assert!(!meant_as_jsonrpc(b"Server listening on stdio"));
        assert!(!meant_as_jsonrpc(br#"{"level":"info","msg":"started"}"#));
    }

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert!(!too_deep(br#"{"a": [1, {"b": 2}]}"#, 3));
        assert!(too_deep(br#"{"a": [1, {"b": 2}]}"#, 2));
        assert!(!too_deep(br#"{"a": "[[[[{{{{ \" [[[["}"#, 1));
        assert!(too_deep(&[b'['; 65], 64));
        // Escaped backslashes end before the quote; an escaped quote does not end a string.
        assert!(too_deep(br#"{"a": "\\\\", "b": [[1]]}"#, 2));
        assert!(!too_deep(br#"{"a": "\\\"[[[", "b": 1}"#, 1));
        // A string that never ends, or ends in a lone backslash, hides what follows.
        assert!(!too_deep(br#"{"a": "[[[[[["#, 1));
        assert!(!too_deep(b"{\"a\": \"x\\", 1));
        assert!(!too_deep(b"", 0));
    }
}
