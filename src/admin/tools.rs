//! `/api/v1/tools`: the aggregated catalog, calling a tool, and registering a tool backed
//! by a command.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use indexmap::IndexMap;
use rmcp::model::JsonObject;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AdminState,
    auth::Caller,
    error::{ApiError, Body, ErrorBody},
    services::{Service, register},
};
use crate::{
    config::UpstreamConfig,
    error::GatewayError,
    gateway::{self, Origin, StatelessCaller, View},
    security::Principal,
};

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new()
        .routes(routes!(list_tools, register_tool))
        .routes(routes!(call_tool))
}

#[derive(Serialize, utoipa::ToSchema)]
struct ToolInfo {
    /// The name clients call it by.
    name: String,
    /// The upstream that serves it, and its name there.
    upstream: String,
    original_name: String,
    description: Option<String>,
    #[schema(value_type = Object)]
    input_schema: Value,
    /// The upstream's state: `ready` when the tool can be called.
    status: &'static str,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ToolFilter {
    /// Only this upstream's tools.
    upstream: Option<String>,
}

/// Every tool in the catalog, with the upstream that serves it.
#[utoipa::path(get, path = "/api/v1/tools", tag = "tools",
    params(ToolFilter),
    responses((status = 200, body = Vec<ToolInfo>, description = "OK"), (status = 401, body = ErrorBody, description = "No valid bearer token")),
    security(("bearer" = [])))]
async fn list_tools(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
    filter: Result<Query<ToolFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ToolInfo>>, ApiError> {
    let Query(filter) = filter.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let catalog = state
        .gateway
        .catalog_for(view_of(&state, &caller)?.as_deref());
    let tools = catalog
        .tools()
        .iter()
        .filter(|entry| {
            filter
                .upstream
                .as_deref()
                .is_none_or(|name| entry.upstream.name() == name)
        })
        .map(|entry| ToolInfo {
            name: entry.item.name.to_string(),
            upstream: entry.upstream.name().to_owned(),
            original_name: entry.original.clone(),
            description: entry.item.description.as_deref().map(str::to_owned),
            input_schema: Value::Object(JsonObject::clone(&entry.item.input_schema)),
            status: entry.upstream.state().phase.as_str(),
        })
        .collect();
    Ok(Json(tools))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ToolCall {
    /// The tool's name as `GET /api/v1/tools` lists it.
    tool_name: String,
    /// The tool's arguments.
    #[serde(default)]
    #[schema(value_type = Object)]
    arguments: Option<JsonObject>,
}

/// Calls a tool and returns its MCP result (`content`, `structuredContent`, `isError`).
/// A tool that ran and failed is a 200 with `isError: true`; a call that could not run is
/// an error status.
#[utoipa::path(post, path = "/api/v1/tools/call", tag = "tools",
    request_body = ToolCall,
    responses(
        (status = 200, description = "The tool's result", body = Object),
        (status = 400, body = ErrorBody, description = "Bad request"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 404, body = ErrorBody, description = "No such tool"),
        (status = 502, body = ErrorBody, description = "The upstream failed or returned an error"),
        (status = 503, body = ErrorBody, description = "The upstream is not available"),
        (status = 504, body = ErrorBody, description = "The upstream did not answer in time"),
    ),
    security(("bearer" = [])))]
async fn call_tool(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
    Body(call): Body<ToolCall>,
) -> Result<Response, ApiError> {
    let arguments = call
        .arguments
        .map(|arguments| serde_json::value::to_raw_value(&arguments))
        .transpose()
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let origin = Origin {
        client: Some(Arc::from("rest")),
        principal: Some(caller.identity()),
        view: view_of(&state, &caller)?,
        caller: Some(StatelessCaller::unaskable()),
        ..Origin::default()
    };
    let call = gateway::ToolCall {
        name: &call.tool_name,
        arguments: arguments.as_deref(),
        meta: serde_json::Map::new(),
        retry: gateway::Retry::default(),
    };
    let result = state.gateway.call_tool_text(call, &origin).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], result).into_response())
}

/// The virtual server the caller's API key is bound to, if it is: the key sees and calls
/// only that part of the catalog, here as on `/mcp`.
pub(super) fn view_of(
    state: &AdminState,
    caller: &Principal,
) -> Result<Option<Arc<View>>, GatewayError> {
    let Some(name) = &caller.virtual_server else {
        return Ok(None);
    };
    state
        .gateway
        .view(name)
        .map(Some)
        .ok_or_else(|| GatewayError::UnknownVirtualServer { name: name.clone() })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CommandTool {
    /// The service's name (1-32 characters of a-z, 0-9 and '-'); its tools are exposed
    /// as `<name>__<tool>`.
    name: String,
    /// A stdio MCP server to run: a program in `security.spawn_allowlist`.
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: IndexMap<String, String>,
}

/// Registers the tools of a stdio MCP server command, as a service of its own (see
/// `/api/v1/mcp/services`). The command must be in `security.spawn_allowlist`; if it is
/// not, nothing is started.
#[utoipa::path(post, path = "/api/v1/tools", tag = "tools",
    request_body = CommandTool,
    responses(
        (status = 201, body = Service, description = "Created"),
        (status = 400, body = ErrorBody, description = "Not valid, or the command is not allowed"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 409, body = ErrorBody, description = "A service of that name exists"),
    ),
    security(("bearer" = [])))]
async fn register_tool(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    Body(tool): Body<CommandTool>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let entry = UpstreamConfig {
        command: Some(tool.command),
        args: tool.args,
        env: tool.env,
        ..UpstreamConfig::default()
    };
    let service = register(&state, &tool.name, entry).await?;
    Ok((StatusCode::CREATED, Json(service)))
}
