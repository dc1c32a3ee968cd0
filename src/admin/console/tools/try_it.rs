//! The try-it form of a tool: its inputs, made from the properties of the tool's input
//! schema, the arguments they make, and the result as the page shows it.

use rmcp::model::JsonObject;
use serde_json::{Map, Value};

/// The form's inputs for the properties of `schema`, holding what `sent` has for each.
pub(super) fn fields(schema: &JsonObject, sent: &[(String, String)]) -> Vec<Field> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(property, spec)| {
            let input = format!("arg.{property}");
            let value = sent
                .iter()
                .find(|(key, _)| *key == input)
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            Field {
                name: property.clone(),
                input,
                kind: Kind::of(spec),
                required: required.contains(&property.as_str()),
                description: spec["description"].as_str().unwrap_or("").to_owned(),
                value,
            }
        })
        .collect()
}

/// The call's arguments from the form's fields; a field's text that its type refuses is
/// said with the property's name.
pub(super) fn arguments_of(fields: &[Field]) -> Result<Map<String, Value>, String> {
    let mut arguments = Map::new();
    for field in fields {
        if let Some(value) = field
            .kind
            .value(Some(&field.value), field.required)
            .map_err(|why| format!("{}: {why}", field.name))?
        {
            arguments.insert(field.name.clone(), value);
        }
    }
    Ok(arguments)
}

/// One input of the try-it form, made from one property of the input schema.
pub(super) struct Field {
    pub(super) name: String,
    /// The form input's name: `arg.<property>`.
    pub(super) input: String,
    pub(super) kind: Kind,
    pub(super) required: bool,
    pub(super) description: String,
    /// What the form holds (after a call, what was sent).
    pub(super) value: String,
}

#[derive(PartialEq)]
pub(super) enum Kind {
    Text,
    Number,
    Integer,
    Boolean,
    Choice(Vec<String>),
    /// An object, an array, or a property of no single simple type: JSON text.
    Json,
}

impl Kind {
    pub(super) fn of(schema: &Value) -> Self {
        if let Some(choices) = schema["enum"].as_array()
            && choices.iter().all(Value::is_string)
        {
            return Self::Choice(
                choices
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            );
        }
        match schema["type"].as_str() {
            Some("string") => Self::Text,
            Some("number") => Self::Number,
            Some("integer") => Self::Integer,
            Some("boolean") => Self::Boolean,
            _ => Self::Json,
        }
    }

    /// The form's text as the property's JSON value; `None` for a blank optional field.
    pub(super) fn value(
        &self,
        text: Option<&str>,
        required: bool,
    ) -> Result<Option<Value>, String> {
        let text = text.unwrap_or("");
        if text.trim().is_empty() && *self != Self::Boolean && *self != Self::Text {
            return Ok(None);
        }
        Ok(Some(match self {
            Self::Text if text.is_empty() && !required => return Ok(None),
            Self::Text | Self::Choice(_) => Value::String(text.to_owned()),
            Self::Number => text
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|number| serde_json::Number::from_f64(number).map(Value::Number))
                .ok_or_else(|| format!("{text:?} is not a number"))?,
            Self::Integer => Value::from(
                text.trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{text:?} is not a whole number"))?,
            ),
            Self::Boolean if text.is_empty() && !required => return Ok(None),
            Self::Boolean => Value::Bool(!text.is_empty()),
            Self::Json => {
                serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?
            }
        }))
    }

    fn input_type(&self) -> &'static str {
        match self {
            Self::Number | Self::Integer => "number",
            _ => "text",
        }
    }

    fn step(&self) -> &'static str {
        match self {
            Self::Integer => "1",
            _ => "any",
        }
    }
}

/// What a try-it call gave.
pub(super) struct Outcome {
    /// The tool ran and said it failed (`isError`), or the call could not run.
    pub(super) failed: bool,
    /// Why the call could not run.
    pub(super) refused: Option<String>,
    pub(super) blocks: Vec<Block>,
    pub(super) structured: Option<String>,
}

/// One content block of a result, as the page shows it.
pub(super) enum Block {
    Text(String),
    /// A `data:` URL of an image or audio block.
    Image(String),
    Audio(String),
    /// A resource or resource link: its URI and its text, if any.
    Resource(String, String),
    Other(String),
}

impl Outcome {
    pub(super) fn refused(why: String) -> Self {
        Self {
            failed: true,
            refused: Some(why),
            blocks: Vec::new(),
            structured: None,
        }
    }

    pub(super) fn of(result: &Value) -> Self {
        let blocks = result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|block| {
                let text = |key: &str| block[key].as_str().unwrap_or("").to_owned();
                let data_url = || format!("data:{};base64,{}", text("mimeType"), text("data"));
                match block["type"].as_str() {
                    Some("text") => Block::Text(text("text")),
                    Some("image") => Block::Image(data_url()),
                    Some("audio") => Block::Audio(data_url()),
                    Some("resource") => Block::Resource(
                        block["resource"]["uri"].as_str().unwrap_or("").to_owned(),
                        block["resource"]["text"].as_str().unwrap_or("").to_owned(),
                    ),
                    Some("resource_link") => Block::Resource(text("uri"), text("name")),
                    _ => Block::Other(pretty(block)),
                }
            })
            .collect();
        Self {
            failed: result["isError"] == true,
            refused: None,
            blocks,
            structured: result.get("structuredContent").map(pretty),
        }
    }
}

pub(super) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

impl Field {
    pub(super) fn is_boolean(&self) -> bool {
        self.kind == Kind::Boolean
    }

    pub(super) fn is_json(&self) -> bool {
        self.kind == Kind::Json
    }

    pub(super) fn choices(&self) -> &[String] {
        match &self.kind {
            Kind::Choice(choices) => choices,
            _ => &[],
        }
    }

    pub(super) fn input_type(&self) -> &'static str {
        self.kind.input_type()
    }

    pub(super) fn step(&self) -> &'static str {
        self.kind.step()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn form_text_becomes_each_type_and_bad_text_is_named() {
        let value = |schema: Value, text: Option<&str>, required: bool| {
            Kind::of(&schema).value(text, required)
        };
        assert_eq!(
            value(json!({"type": "integer"}), Some("42"), true),
            Ok(Some(json!(42)))
        );
        assert_eq!(
            value(json!({"type": "number"}), Some("2.5"), true),
            Ok(Some(json!(2.5)))
        );
        assert_eq!(
            value(json!({"type": "boolean"}), Some("on"), false),
            Ok(Some(json!(true)))
        );
        assert_eq!(
            value(json!({"type": "boolean"}), None, true),
            Ok(Some(json!(false)))
        );
        assert_eq!(value(json!({"type": "boolean"}), None, false), Ok(None));
        assert_eq!(value(json!({"type": "string"}), Some(""), false), Ok(None));
        assert_eq!(
            value(json!({"type": "string"}), Some(""), true),
            Ok(Some(json!("")))
        );
        assert_eq!(
            value(json!({"enum": ["a", "b"]}), Some("b"), true),
            Ok(Some(json!("b")))
        );
        assert_eq!(
            value(json!({"type": "array"}), Some("[1, 2]"), true),
            Ok(Some(json!([1, 2])))
        );
        assert_eq!(value(json!({"type": "integer"}), Some(""), false), Ok(None));
        assert!(
            value(json!({"type": "integer"}), Some("4.5"), true)
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            value(json!({"type": "number"}), Some("many"), true)
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            value(json!({"type": "object"}), Some("{nope"), true)
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
