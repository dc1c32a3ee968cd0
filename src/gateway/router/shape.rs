//! A result on its way to the client: how it counts, the `resultType` its client's era
//! wants, and a task an upstream made of it, passed on under the gateway's id. The lane's
//! results and rmcp's typed ones (for the REST doors) are shaped alike.

use std::{borrow::Cow, collections::BTreeMap};

use rmcp::model::CallToolResponse;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Gateway, Origin, RawAnswer, Reply};
use crate::{error::GatewayError, upstream::Upstream};

/// What the router reads of a result: how it counts, and whether it says what it is.
#[derive(Deserialize)]
struct ResultPeek<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Option<&'a str>,
    #[serde(rename = "isError")]
    is_error: Option<bool>,
}

impl Gateway {
    /// The result as the client gets it: a 2026-07-28 client with `resultType` (session-era
    /// upstreams leave it out), a session-era client without it (as rmcp's server shapes
    /// it); a task the upstream made, under an id of the gateway's.
    pub(super) fn shape(
        &self,
        upstream: &Upstream,
        reply: Reply,
        origin: &Origin,
    ) -> Result<RawAnswer, GatewayError> {
        let unreadable = |error: serde_json::Error| crate::upstream::unreadable(upstream, &error);
        let mut raw = match reply {
            Reply::Raw(raw) => raw,
            Reply::Typed(result) => serde_json::value::to_raw_value(&result).map_err(unreadable)?,
        };
        let peek: ResultPeek = serde_json::from_str(raw.get()).map_err(unreadable)?;
        let kind = match (peek.result_type, peek.is_error) {
            (Some("input_required"), _) => "input_required",
            (_, Some(true)) => "tool_error",
            _ => "ok",
        };
        let has_result_type = peek.result_type.is_some();
        if peek.result_type == Some("task") {
            // A 2026-07-28 upstream may answer a client that takes tasks with one.
            raw = self
                .pass_raw_task(&raw, upstream.name(), origin)
                .map_err(unreadable)?;
        }
        let result = for_client(raw, has_result_type, origin.stateless).map_err(unreadable)?;
        Ok(RawAnswer { result, kind })
    }
}

/// The text of a `tools/call` answer from rmcp's typed way, shaped for its client as the
/// lane shapes one: a REST door answers alike whichever way its call went.
pub fn typed_answer_text(
    response: CallToolResponse,
    stateless: bool,
) -> Result<String, GatewayError> {
    // With whether it says what it is: the last two kinds always do.
    let (raw, has_result_type) = match response {
        CallToolResponse::Complete(result) => (
            serde_json::value::to_raw_value(&result),
            result.result_type.is_some(),
        ),
        CallToolResponse::InputRequired(result) => (serde_json::value::to_raw_value(&result), true),
        CallToolResponse::Task(result) => (serde_json::value::to_raw_value(&result), true),
        _ => {
            return Err(GatewayError::Internal {
                reason: "the upstream answered with a kind of result this gateway does not know"
                    .into(),
            });
        }
    };
    // rmcp's result keeps the `resultType` the upstream sent, or says "complete" of its own.
    raw.and_then(|raw| for_client(raw, has_result_type, stateless))
        .map_err(|error| GatewayError::Internal {
            reason: error.to_string(),
        })
}

/// A result's text as its client takes it: a 2026-07-28 (`stateless`) client's says what
/// it is (`resultType`, "complete" when the upstream left it out), a session-era client's
/// does not.
fn for_client(
    raw: Box<RawValue>,
    has_result_type: bool,
    stateless: bool,
) -> Result<String, serde_json::Error> {
    Ok(match (has_result_type, stateless) {
        (true, true) | (false, false) => String::from(Box::<str>::from(raw)),
        (false, true) => with_complete_result_type(raw.get()),
        (true, false) => without_result_type(raw.get())?,
    })
}

/// `object` (a JSON object's text) without its `resultType` member; the others keep their
/// text, not their order.
fn without_result_type(object: &str) -> Result<String, serde_json::Error> {
    let mut members: BTreeMap<Cow<'_, str>, &RawValue> = serde_json::from_str(object)?;
    members.remove("resultType");
    serde_json::to_string(&members)
}

/// `object` (a JSON object's text) with `"resultType":"complete"` as its first member.
fn with_complete_result_type(object: &str) -> String {
    let inner = object.trim_start().strip_prefix('{').unwrap_or(object);
    let empty = inner.trim_start().starts_with('}');
    let mut text = String::with_capacity(object.len() + 28);
    text.push_str("{\"resultType\":\"complete\"");
    if !empty {
        text.push(',');
    }
    text.push_str(inner);
    text
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn a_result_without_its_type_gets_complete() {
        assert_eq!(
            with_complete_result_type(r#"{"content":[]}"#),
            r#"{"resultType":"complete","content":[]}"#
        );
        for empty in ["{}", " { } "] {
            let shaped: Value = serde_json::from_str(&with_complete_result_type(empty)).unwrap();
            assert_eq!(shaped, serde_json::json!({"resultType": "complete"}));
        }
    }
}
