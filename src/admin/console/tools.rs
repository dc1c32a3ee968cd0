//! The tools page: the catalog searched by name and description, across every upstream or
//! as one virtual server shows it; and for each tool its schema and a "try it" form made from
//! its input schema, whose call takes the gateway's own way (the one `/api/v1/tools/call`
//! takes), so it is counted, logged and kept in the call history under the signed-in user.
//! The form itself, and the result as shown, are in `try_it`.

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

use self::try_it::{Block, Field, Outcome, arguments_of, fields, pretty};
use super::{Frame, SameOrigin, page, session::Signed};
use crate::{
    admin::AdminState,
    gateway::{self, Catalog, Origin, StatelessCaller, View},
};

mod try_it;

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
    let fields = fields(&entry.item.input_schema, sent.unwrap_or_default());
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
                caller: Some(StatelessCaller::unaskable()),
                ..Origin::default()
            };
            let arguments = serde_json::value::to_raw_value(&arguments).ok();
            let call = gateway::ToolCall {
                name: &name,
                arguments: arguments.as_deref(),
                meta: Map::new(),
                retry: gateway::Retry::default(),
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
    let arguments = arguments_of(&fields(&entry.item.input_schema, sent))?;
    Ok(Prepared { arguments, view })
}
