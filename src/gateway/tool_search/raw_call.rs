//! `call_tool` on the gateway's own way: the tool it names and that tool's arguments, read
//! from the call's arguments, which stay the client's JSON text. The checks and their words
//! are [`super::answer`]'s, which unwraps it on rmcp's typed way.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{invalid, is_search_tool};
use crate::error::GatewayError;

/// The arguments of a `call_tool` call as the gateway's own way reads them: the tool it
/// names, and that tool's arguments, left as the client's JSON text.
#[derive(Deserialize)]
struct CallArguments<'a> {
    #[serde(borrow)]
    name: Option<&'a RawValue>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
}

/// The tool a `call_tool` call names and the arguments it passes it, read from the call's
/// `arguments` text (which the tool's arguments stay): [`super::answer`]'s unwrapping, with its
/// checks and its words, for calls that go the gateway's own way.
pub fn unwrap_call(
    arguments: Option<&RawValue>,
) -> Result<(Cow<'_, str>, Option<&RawValue>), GatewayError> {
    let read: CallArguments = match arguments {
        Some(text) => {
            serde_json::from_str(text.get()).map_err(|error| invalid(&error.to_string()))?
        }
        None => CallArguments {
            name: None,
            arguments: None,
        },
    };
    // Borrowed from the text unless it has escapes.
    let name = read
        .name
        .and_then(|name| match serde_json::from_str::<&str>(name.get()) {
            Ok(name) => Some(Cow::Borrowed(name)),
            Err(_) => serde_json::from_str::<String>(name.get())
                .ok()
                .map(Cow::Owned),
        })
        .ok_or_else(|| invalid("`name` (a string) is required"))?;
    if is_search_tool(&name) {
        return Err(invalid(
            "call_tool calls the catalog's tools, not the search's",
        ));
    }
    // `null` reads as none (serde's `Option`), as in `super::answer`.
    let inner = read.arguments;
    if inner.is_some_and(|inner| !inner.get().starts_with('{')) {
        return Err(invalid("`arguments` is an object"));
    }
    Ok((name, inner))
}

#[cfg(test)]
mod tests {
    use rmcp::model::{CallToolRequestParams, JsonObject};
    use serde_json::{Value, json};

    use super::*;
    use crate::gateway::{
        Catalog,
        tool_search::{CALL, SEARCH, Searched, answer},
    };

    /// The gateway's own way unwraps `call_tool` as [`answer`] does: the same tool and
    /// arguments, the same refusals in the same words, with the arguments kept as text.
    #[test]
    fn call_tool_unwraps_alike_on_both_ways() {
        let cases = [
            json!({"name": "everything__echo", "arguments": {"message": "hi", "n": [1, 2.5]}}),
            json!({"name": "everything__echo"}),
            json!({"name": "everything__echo", "arguments": null}),
            json!({"name": "a \"quoted\" name", "arguments": {}, "other": true}),
            json!({}),
            json!({"name": 7}),
            json!({"name": CALL}),
            json!({"name": SEARCH, "arguments": {}}),
            json!({"name": "x", "arguments": 1}),
            json!({"name": "x", "arguments": [1]}),
            json!({"name": "x", "arguments": "{}"}),
        ];
        for case in cases {
            let text = serde_json::value::to_raw_value(&case).unwrap();
            let raw = unwrap_call(Some(&text));
            let Value::Object(arguments) = case.clone() else {
                unreachable!()
            };
            let params = CallToolRequestParams::new(CALL).with_arguments(arguments);
            match (answer(params, &Catalog::default()), raw) {
                (Ok(Searched::Call(typed)), Ok((name, inner))) => {
                    assert_eq!(typed.name, name, "{case}");
                    let inner: Option<JsonObject> =
                        inner.map(|inner| serde_json::from_str(inner.get()).unwrap());
                    assert_eq!(typed.arguments, inner, "{case}");
                }
                (Err(typed), Err(raw)) => assert_eq!(typed.to_string(), raw.to_string(), "{case}"),
                (typed, raw) => panic!("{case}: {:?} vs {:?}", typed.is_ok(), raw.is_ok()),
            }
        }
        // A call without arguments names no tool.
        assert!(unwrap_call(None).is_err());
    }
}
