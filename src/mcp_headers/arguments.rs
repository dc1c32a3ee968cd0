//! SEP-2243's header arguments: the arguments of a `tools/call` that its tool's input schema
//! marks `x-mcp-header`, which a 2026-07-28 request over HTTP carries in an
//! `Mcp-Param-<header>` header too, so that a proxy can route on them without reading the
//! body; and how a header carries a text (as it is, or in Base64 between `=?base64?` and
//! `?=`). The gateway writes them to its upstreams (`upstream::mirrored`) and checks a
//! client's against the body (the HTTP door's `param_headers`), as the SDKs do.

use std::borrow::Cow;

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value};

/// How SEP-2243 marks a header value it carries in Base64: `=?base64?…?=`.
const ENCODED_PREFIX: &str = "=?base64?";
const ENCODED_SUFFIX: &str = "?=";

/// An argument a tool's schema marks for a header, and its value in one call.
#[derive(Debug, PartialEq, Eq)]
pub struct Marked<'a> {
    /// The header's name after `Mcp-Param-`.
    pub header: &'a str,
    /// Where the argument is: the property names from the arguments' root to it.
    pub path: Vec<&'a str>,
    /// Its value as a header carries it (before Base64); `None` when it is absent, null, an
    /// array or an object, which no header carries.
    pub text: Option<String>,
}

/// Whether a tool's input schema marks any argument for a header.
pub fn declared(schema: &Map<String, Value>) -> bool {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return false;
    };
    properties.values().any(|property| match property {
        Value::Object(property) => marks(property).is_some() || declared(property),
        _ => false,
    })
}

/// Every argument `schema` marks for a header, with its value in `arguments`: each property
/// reached from the root through `properties` alone whose `x-mcp-header` is a name that is
/// not empty (the SDKs read no other).
pub fn marked<'a>(
    schema: &'a Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
) -> Vec<Marked<'a>> {
    let mut found = Vec::new();
    collect(schema, arguments, &mut Vec::new(), &mut found);
    found
}

/// Adds the marked arguments under `schema`'s `properties` to `found`; `arguments` is the
/// object at the same place in the call's arguments, if there is one, and `path` its place.
fn collect<'a>(
    schema: &'a Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
    path: &mut Vec<&'a str>,
    found: &mut Vec<Marked<'a>>,
) {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return;
    };
    for (name, property) in properties {
        let Value::Object(property) = property else {
            continue;
        };
        let value = arguments.and_then(|arguments| arguments.get(name));
        path.push(name);
        if let Some(header) = marks(property) {
            found.push(Marked {
                header,
                path: path.clone(),
                text: value.and_then(header_text),
            });
        }
        collect(property, value.and_then(Value::as_object), path, found);
        path.pop();
    }
}

/// The header a property's schema marks it for, if it names one.
fn marks(property: &Map<String, Value>) -> Option<&str> {
    match property.get("x-mcp-header") {
        Some(Value::String(header)) if !header.is_empty() => Some(header),
        _ => None,
    }
}

/// A primitive's text as a header carries it: a string as it is, a number or a boolean as
/// JSON writes it; nothing for null, an array or an object.
fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// `text` (a tool's name, an argument's value) as a header carries it: as it is when HTTP
/// keeps it unchanged, else the standard Base64 of its UTF-8 between `=?base64?` and `?=`.
/// A header cannot carry what is not visible ASCII or a space, and HTTP drops spaces at
/// either end; a text that already looks encoded is encoded again, or it would be decoded.
pub fn encoded(text: &str) -> Cow<'_, str> {
    let travels_as_it_is = text
        .bytes()
        .all(|byte| byte.is_ascii_graphic() || byte == b' ')
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !looks_encoded(text);
    if travels_as_it_is {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!(
            "{ENCODED_PREFIX}{}{ENCODED_SUFFIX}",
            STANDARD.encode(text)
        ))
    }
}

/// The text a header's value carries: the value as it is, or the text its Base64 form holds;
/// `None` when that form holds no Base64 (padded as the standard alphabet asks) of UTF-8.
pub fn decoded(value: &str) -> Option<Cow<'_, str>> {
    if !looks_encoded(value) {
        return Some(Cow::Borrowed(value));
    }
    let inner = &value[ENCODED_PREFIX.len()..value.len() - ENCODED_SUFFIX.len()];
    let bytes = STANDARD.decode(inner).ok()?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

fn looks_encoded(text: &str) -> bool {
    text.len() >= ENCODED_PREFIX.len() + ENCODED_SUFFIX.len()
        && text.starts_with(ENCODED_PREFIX)
        && text.ends_with(ENCODED_SUFFIX)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(object) => object,
            _ => unreachable!("an object"),
        }
    }

    fn with_text<'a>(marked: &'a [Marked<'_>]) -> Vec<(&'a str, &'a str)> {
        let mut found: Vec<_> = marked
            .iter()
            .filter_map(|marked| Some((marked.header, marked.text.as_deref()?)))
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn marked_arguments_with_primitive_values_have_a_headers_text() {
        let schema = object(json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "level": {"type": "integer", "x-mcp-header": "Level"},
                "dry": {"type": "boolean", "x-mcp-header": "Dry"},
                "note": {"type": "string"},
                "where": {
                    "type": "object",
                    "properties": {"zone": {"type": "string", "x-mcp-header": "Zone"}}
                }
            }
        }));
        assert!(declared(&schema));
        let arguments = object(json!({
            "region": "eu-west",
            "level": 3,
            "dry": false,
            "note": "not mirrored",
            "where": {"zone": "b"}
        }));
        let marked = marked(&schema, Some(&arguments));
        assert_eq!(
            with_text(&marked),
            [
                ("Dry", "false"),
                ("Level", "3"),
                ("Region", "eu-west"),
                ("Zone", "b")
            ]
        );
        let zone = marked
            .iter()
            .find(|marked| marked.header == "Zone")
            .unwrap();
        assert_eq!(zone.path, ["where", "zone"]);
    }

    #[test]
    fn absent_null_and_compound_values_have_no_text() {
        let schema = object(json!({
            "properties": {
                "a": {"type": "string", "x-mcp-header": "A"},
                "b": {"type": "string", "x-mcp-header": "B"},
                "c": {"type": "string", "x-mcp-header": "C"},
                "o": {"properties": {"d": {"type": "string", "x-mcp-header": "D"}}}
            }
        }));
        let arguments = object(json!({"b": null, "c": ["x"], "o": "not an object"}));
        let marked = marked(&schema, Some(&arguments));
        assert_eq!(marked.len(), 4);
        assert!(with_text(&marked).is_empty());
        assert_eq!(super::marked(&schema, None).len(), 4);
    }

    #[test]
    fn annotations_off_the_properties_chain_or_not_a_name_are_not_read() {
        let schema = object(json!({
            "properties": {
                "a": {"type": "string"},
                "e": {"type": "string", "x-mcp-header": ""},
                "n": {"type": "string", "x-mcp-header": 7}
            },
            "$defs": {"a": {"type": "string", "x-mcp-header": "A"}},
            "items": {"properties": {"a": {"x-mcp-header": "B"}}}
        }));
        assert!(!declared(&schema));
        assert!(marked(&schema, Some(&object(json!({"a": "x", "e": "y"})))).is_empty());
    }

    #[test]
    fn a_text_a_header_cannot_carry_as_it_is_goes_in_base64_and_comes_back() {
        assert_eq!(encoded("get_weather"), "get_weather");
        assert_eq!(encoded("two words"), "two words");
        assert_eq!(encoded("a=?b"), "a=?b");
        // SEP-2243's own examples, and what HTTP would change or refuse.
        assert_eq!(encoded("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encoded(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encoded("café"), "=?base64?Y2Fmw6k=?=");
        assert_eq!(encoded("tab\there"), "=?base64?dGFiCWhlcmU=?=");
        assert_eq!(encoded("line\nbreak"), "=?base64?bGluZQpicmVhaw==?=");
        // A text that looks encoded is encoded again, so that it is not decoded.
        assert_eq!(
            encoded("=?base64?eA==?="),
            "=?base64?PT9iYXNlNjQ/ZUE9PT89?="
        );
        assert_eq!(encoded("=?base64?="), "=?base64?="); // too short to be either end
        for text in ["Hello, 世界", " padded ", "=?base64?eA==?=", "plain", ""] {
            assert_eq!(decoded(&encoded(text)).as_deref(), Some(text));
        }
    }

    #[test]
    fn a_base64_form_that_holds_no_base64_of_utf8_is_not_decoded() {
        // The conformance suite's cases: padding left out, characters outside the alphabet.
        assert_eq!(decoded("=?base64?SGVsbG8?="), None);
        assert_eq!(decoded("=?base64?SGVs!!!bG8=?="), None);
        assert_eq!(decoded("=?base64?/w==?="), None); // the byte 0xff alone
        // Without both of its ends, a value is taken as it is.
        assert_eq!(
            decoded("=?base64?SGVsbG8="),
            Some(Cow::Borrowed("=?base64?SGVsbG8="))
        );
        assert_eq!(decoded("SGVsbG8=?="), Some(Cow::Borrowed("SGVsbG8=?=")));
    }
}
