//! The tools page: the catalog searched by name and description, across every upstream or
//! as one virtual server shows it; and for each tool its schema and a "try it" form made from
//! its input schema, whose call takes the gateway's own way (the one `/api/v1/tools/call`
//! takes), so it is counted, logged and kept in the call history under the signed-in user.

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Frame, SameOrigin, page, session::Signed};
use crate::{
    admin::AdminState,
    gateway::{self, Catalog, Origin, View},
};

/// The page's own path.
pub(super) const PAGE: &str = "/ui/tools";

#[derive(Deserialize, Default)]
pub(super) struct Search {
    #[serde(default)]
    q: String,
    /// A virtual server's name: the catalog as it shows it.
    #[serde(default)]
    server: String,
}

#[derive(Template)]
#[template(path = "tools.html")]
struct ToolsPage {
    frame: Frame,
    search: Search,
    servers: Vec<String>,
    tools: Vec<ToolRow>,
    refused: Option<String>,
}

struct ToolRow {
    name: String,
    upstream: String,
    state: &'static str,
    state_label: &'static str,
    summary: String,
}

/// The catalog `server` names (every upstream's when blank), or why not.
fn catalog(state: &AdminState, server: &str) -> Result<(Arc<Catalog>, Option<Arc<View>>), String> {
    if server.is_empty() {
        return Ok((state.gateway.catalog_for(None), None));
    }
    let view = state
        .gateway
        .view(server)
        .ok_or_else(|| format!("no virtual server named {server:?}"))?;
    Ok((state.gateway.catalog_for(Some(&view)), Some(view)))
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(search): Query<Search>,
    Signed(user): Signed,
) -> Response {
    let frame = Frame::new(&headers, Some(user.username), PAGE);
    let t = frame.t;
    let mut servers: Vec<String> = state.config.virtual_servers.keys().cloned().collect();
    servers.sort();
    let (tools, refused) = match catalog(&state, &search.server) {
        Ok((catalog, _)) => {
            let words: Vec<String> = search.q.split_whitespace().map(str::to_lowercase).collect();
            let tools = catalog
                .tools()
                .iter()
                .filter(|entry| {
                    let haystack = format!(
                        "{} {}",
                        entry.exposed_name(),
                        entry.item.description.as_deref().unwrap_or("")
                    )
                    .to_lowercase();
                    words.iter().all(|word| haystack.contains(word))
                })
                .map(|entry| {
                    let state = entry.upstream.state().phase.as_str();
                    ToolRow {
                        name: entry.exposed_name().to_owned(),
                        upstream: entry.upstream.name().to_owned(),
                        state,
                        state_label: t.state(state),
                        summary: entry
                            .item
                            .description
                            .as_deref()
                            .and_then(|text| text.lines().next())
                            .unwrap_or("")
                            .to_owned(),
                    }
                })
                .collect();
            (tools, None)
        }
        Err(why) => (Vec::new(), Some(why)),
    };
    page(&ToolsPage {
        frame,
        search,
        servers,
        tools,
        refused,
    })
}

#[derive(Template)]
#[template(path = "tool.html")]
struct ToolPage {
    frame: Frame,
    name: String,
    server: String,
    upstream: String,
    description: String,
    schema: String,
    fields: Vec<Field>,
    outcome: Option<Outcome>,
}

/// One input of the try-it form, made from one property of the input schema.
struct Field {
    name: String,
    /// The form input's name: `arg.<property>`.
    input: String,
    kind: Kind,
    required: bool,
    description: String,
    /// What the form holds (after a call, what was sent).
    value: String,
}

#[derive(PartialEq)]
enum Kind {
    Text,
    Number,
    Integer,
    Boolean,
    Choice(Vec<String>),
    /// An object, an array, or a property of no single simple type: JSON text.
    Json,
}

impl Kind {
    fn of(schema: &Value) -> Self {
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
    fn value(&self, text: Option<&str>, required: bool) -> Result<Option<Value>, String> {
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
struct Outcome {
    /// The tool ran and said it failed (`isError`), or the call could not run.
    failed: bool,
    /// Why the call could not run.
    refused: Option<String>,
    blocks: Vec<Block>,
    structured: Option<String>,
}

/// One content block of a result, as the page shows it.
enum Block {
    Text(String),
    /// A `data:` URL of an image or audio block.
    Image(String),
    Audio(String),
    /// A resource or resource link: its URI and its text, if any.
    Resource(String, String),
    Other(String),
}

impl Outcome {
    fn refused(why: String) -> Self {
        Self {
            failed: true,
            refused: Some(why),
            blocks: Vec::new(),
            structured: None,
        }
    }

    fn of(result: &Value) -> Self {
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

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[derive(Deserialize, Default)]
pub(super) struct In {
    #[serde(default)]
    server: String,
}

fn tool_page(
    state: &AdminState,
    frame: Frame,
    name: &str,
    server: &str,
    sent: Option<&[(String, String)]>,
    outcome: Option<Outcome>,
) -> Response {
    let Ok((catalog, _)) = catalog(state, server) else {
        return (StatusCode::NOT_FOUND, "no such virtual server").into_response();
    };
    let Some(entry) = catalog
        .tools()
        .iter()
        .find(|entry| entry.exposed_name() == name)
    else {
        return (StatusCode::NOT_FOUND, "no such tool").into_response();
    };
    let schema = Value::Object(rmcp::model::JsonObject::clone(&entry.item.input_schema));
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let fields = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(property, spec)| {
            let input = format!("arg.{property}");
            let value = sent
                .and_then(|sent| sent.iter().find(|(key, _)| *key == input))
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
        .collect();
    page(&ToolPage {
        frame,
        name: name.to_owned(),
        server: server.to_owned(),
        upstream: entry.upstream.name().to_owned(),
        description: entry.item.description.as_deref().unwrap_or("").to_owned(),
        schema: pretty(&schema),
        fields,
        outcome,
    })
}

pub(super) async fn show(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(within): Query<In>,
    Signed(user): Signed,
) -> Response {
    let frame = Frame::new(&headers, Some(user.username), PAGE);
    tool_page(&state, frame, &name, &within.server, None, None)
}

/// The try-it form's call.
pub(super) async fn call(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Path(name): Path<String>,
    Query(within): Query<In>,
    Signed(user): Signed,
    Form(sent): Form<Vec<(String, String)>>,
) -> Response {
    let frame = Frame::new(&headers, Some(user.username.clone()), PAGE);
    let outcome = match arguments(&state, &name, &within.server, &sent) {
        Ok(Prepared { arguments, view }) => {
            let origin = Origin {
                client: Some(Arc::from("console")),
                principal: Some(user.identity()),
                view,
                ..Origin::default()
            };
            let arguments = serde_json::value::to_raw_value(&arguments).ok();
            let call = gateway::ToolCall {
                name: &name,
                arguments: arguments.as_deref(),
                meta: Map::new(),
            };
            match state.gateway.call_tool_text(call, &origin).await {
                Ok(text) => match serde_json::from_str::<Value>(&text) {
                    Ok(result) => Outcome::of(&result),
                    Err(error) => Outcome::refused(format!("the result is not JSON: {error}")),
                },
                Err(error) => Outcome::refused(error.to_string()),
            }
        }
        Err(why) => Outcome::refused(why),
    };
    tool_page(
        &state,
        frame,
        &name,
        &within.server,
        Some(&sent),
        Some(outcome),
    )
}

/// A try-it call's arguments, and the virtual server it is made through.
struct Prepared {
    arguments: Map<String, Value>,
    view: Option<Arc<View>>,
}

/// The call's arguments from the form, by the tool's input schema.
fn arguments(
    state: &AdminState,
    name: &str,
    server: &str,
    sent: &[(String, String)],
) -> Result<Prepared, String> {
    let (catalog, view) = catalog(state, server)?;
    let entry = catalog
        .tools()
        .iter()
        .find(|entry| entry.exposed_name() == name)
        .ok_or_else(|| format!("no tool named {name:?}"))?;
    let schema = &entry.item.input_schema;
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut arguments = Map::new();
    for (property, spec) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let input = format!("arg.{property}");
        let text = sent
            .iter()
            .find(|(key, _)| *key == input)
            .map(|(_, value)| value.as_str());
        let required = required.contains(&property.as_str());
        if let Some(value) = Kind::of(spec)
            .value(text, required)
            .map_err(|why| format!("{property}: {why}"))?
        {
            arguments.insert(property.clone(), value);
        }
    }
    Ok(Prepared { arguments, view })
}

impl Field {
    fn is_boolean(&self) -> bool {
        self.kind == Kind::Boolean
    }

    fn is_json(&self) -> bool {
        self.kind == Kind::Json
    }

    fn choices(&self) -> &[String] {
        match &self.kind {
            Kind::Choice(choices) => choices,
            _ => &[],
        }
    }

    fn input_type(&self) -> &'static str {
        self.kind.input_type()
    }

    fn step(&self) -> &'static str {
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
