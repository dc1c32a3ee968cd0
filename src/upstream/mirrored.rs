//! What a 2026-07-28 request to an HTTP upstream says again in its headers (SEP-2243), beside
//! its method: what it names (`Mcp-Name`), and the arguments its tool's input schema marks
//! `x-mcp-header` (`Mcp-Param-<header>`), so that a proxy or load balancer in front of the
//! upstream can route on them without reading the body. The upstream refuses a call whose
//! headers and body disagree (-32020), so they are read from the arguments as sent.

use serde_json::{Map, Value};

use super::Upstream;

/// A request's words for its headers.
#[derive(Debug, Clone)]
pub struct Mirrored {
    /// What it names: a tool's or prompt's name, a resource's URI, a task's id.
    pub name: Option<String>,
    /// Its arguments that go in headers too: each header's name after `Mcp-Param-`, and the
    /// argument's value as text (the lane writes it in Base64 when a header cannot carry it).
    pub arguments: Vec<(String, String)>,
}

impl Upstream {
    /// The arguments of a call of its tool `tool` that go in headers too, by the tool's
    /// definition as this upstream listed it (rmcp's client left out those whose
    /// annotations are invalid); none for a tool it did not list.
    pub fn header_arguments(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
    ) -> Vec<(String, String)> {
        let state = self.state.load();
        state
            .tools
            .iter()
            .find(|listed| listed.name == tool)
            .map(|listed| in_headers(&listed.input_schema, arguments))
            .unwrap_or_default()
    }
}

/// The arguments of a call of a tool with input schema `schema` that go in headers too
/// (SEP-2243): each property reached from the root through `properties` alone and marked
/// `x-mcp-header`, whose value in `arguments` is a string, a number or a boolean. A property
/// that is absent or null has no header, as the SDKs write and check them.
fn in_headers(
    schema: &Map<String, Value>,
    arguments: &Map<String, Value>,
) -> Vec<(String, String)> {
    let mut found = Vec::new();
    collect(schema, Some(arguments), &mut found);
    found
}

/// Adds the header arguments under `schema`'s `properties` to `found`, with their values in
/// `arguments` (the object at the same place in the call's arguments, if there is one).
fn collect(
    schema: &Map<String, Value>,
    arguments: Option<&Map<String, Value>>,
    found: &mut Vec<(String, String)>,
) {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return;
    };
    for (name, property) in properties {
        let Value::Object(property) = property else {
            continue;
        };
        let value = arguments.and_then(|arguments| arguments.get(name));
        if let Some(Value::String(header)) = property.get("x-mcp-header")
            && let Some(text) = value.and_then(as_header_text)
        {
            found.push((header.clone(), text));
        }
        collect(property, value.and_then(Value::as_object), found);
    }
}

/// A primitive's text as a header carries it: a string as it is, a number or a boolean as
/// JSON writes it; nothing for null, an array or an object.
fn as_header_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
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

    #[test]
    fn marked_arguments_with_primitive_values_go_in_headers() {
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
        let arguments = object(json!({
            "region": "eu-west",
            "level": 3,
            "dry": false,
            "note": "not mirrored",
            "where": {"zone": "b"}
        }));
        let mut found = in_headers(&schema, &arguments);
        found.sort();
        let expected = [
            ("Dry", "false"),
            ("Level", "3"),
            ("Region", "eu-west"),
            ("Zone", "b"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(header, text)| ((*header).to_owned(), (*text).to_owned()))
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn absent_null_and_compound_values_have_no_header() {
        let schema = object(json!({
            "properties": {
                "a": {"type": "string", "x-mcp-header": "A"},
                "b": {"type": "string", "x-mcp-header": "B"},
                "c": {"type": "string", "x-mcp-header": "C"},
                "o": {"properties": {"d": {"type": "string", "x-mcp-header": "D"}}}
            }
        }));
        let arguments = object(json!({"b": null, "c": ["x"], "o": "not an object"}));
        assert!(in_headers(&schema, &arguments).is_empty());
    }

    #[test]
    fn annotations_off_the_properties_chain_are_not_read() {
        let schema = object(json!({
            "properties": {"a": {"type": "string"}},
            "$defs": {"a": {"type": "string", "x-mcp-header": "A"}},
            "items": {"properties": {"a": {"x-mcp-header": "B"}}}
        }));
        assert!(in_headers(&schema, &object(json!({"a": "x"}))).is_empty());
    }
}
