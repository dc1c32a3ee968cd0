//! `POST /api/v1/mcp/proxy`: one JSON-RPC request in, its response out, with no handshake
//! and no session, for plain HTTP clients (`curl`). Requests that flow back from the
//! upstream (sampling, elicitation) have no one to go to here and are refused.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rmcp::{
    ErrorData,
    model::{ErrorCode, GetPromptResponse, InputResponses, ReadResourceResponse},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json, value::RawValue};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AdminState, auth::Caller, error::ErrorBody};
use crate::{
    gateway::{Origin, Page, Retry, StatelessCaller, ToolCall, typed_answer_text},
    jsonrpc::{error_text, result_text},
};

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new().routes(routes!(proxy))
}

/// Runs one JSON-RPC request (`tools/list`, `tools/call`, `resources/list`,
/// `resources/templates/list`, `resources/read`, `prompts/list`, `prompts/get`,
/// `completion/complete`, `ping`) against the gateway and returns its JSON-RPC response.
/// A notification gets 202 and no body.
#[utoipa::path(post, path = "/api/v1/mcp/proxy", tag = "mcp",
    request_body(content = Object, description = "A JSON-RPC 2.0 request",
        example = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})),
    responses(
        (status = 200, description = "The JSON-RPC response (a result or an error)", body = Object),
        (status = 202, description = "A notification was accepted"),
        (status = 400, description = "Not JSON, or not a JSON-RPC request (a JSON-RPC error)", body = Object),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
    ),
    security(("bearer" = [])))]
async fn proxy(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
    body: Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return reply(
                StatusCode::BAD_REQUEST,
                Value::Null,
                Err(ErrorData::parse_error(format!("not JSON: {error}"), None)),
            );
        }
    };
    let Some((id, method, params)) = parse_request(&request) else {
        return reply(
            StatusCode::BAD_REQUEST,
            request.get("id").cloned().unwrap_or(Value::Null),
            Err(ErrorData::invalid_request(
                "expected a JSON-RPC 2.0 request: {\"jsonrpc\": \"2.0\", \"id\", \"method\", \"params\"?}",
                None,
            )),
        );
    };
    let Some(id) = id else {
        return StatusCode::ACCEPTED.into_response();
    };
    let view = match super::tools::view_of(&state, &caller) {
        Ok(view) => view,
        Err(error) => return reply(StatusCode::OK, id, Err(error.into())),
    };
    // One request, no session: its client is answered as a 2026-07-28 client is, an
    // upstream's question as an `input_required` result that it answers in a retry.
    let origin = Origin {
        client: Some(Arc::from("rest-proxy")),
        principal: Some(caller.identity()),
        view,
        stateless: true,
        caller: Some(StatelessCaller::unaskable()),
        ..Origin::default()
    };
    let outcome = dispatch(&state, method, params, &origin).await;
    reply(StatusCode::OK, id, outcome)
}

/// `(id, method, params)` of a JSON-RPC request; `id` is `None` for a notification.
fn parse_request(request: &Value) -> Option<(Option<Value>, &str, Value)> {
    let object = request.as_object()?;
    if object.get("jsonrpc")? != "2.0" {
        return None;
    }
    let method = object.get("method")?.as_str()?;
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
        Some(_) => return None,
    };
    let params = match object.get("params") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(params @ Value::Object(_)) => params.clone(),
        Some(_) => return None,
    };
    Some((id, method, params))
}

async fn dispatch(
    state: &AdminState,
    method: &str,
    params: Value,
    origin: &Origin,
) -> Result<Box<RawValue>, ErrorData> {
    let gateway = &state.gateway;
    let cursor = params
        .get("cursor")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let cursor = cursor.as_deref();
    match method {
        "ping" => to_raw(json!({})),
        "tools/list" => {
            let tools = gateway.list_tools(cursor, origin.view.as_deref()).await?;
            to_raw(page("tools", tools))
        }
        "prompts/list" => {
            let prompts = gateway.list_prompts(cursor, origin.view.as_deref()).await?;
            to_raw(page("prompts", prompts))
        }
        "resources/list" => {
            let resources = gateway
                .list_resources(cursor, origin.view.as_deref())
                .await?;
            to_raw(page("resources", resources))
        }
        "resources/templates/list" => {
            let templates = gateway
                .list_resource_templates(cursor, origin.view.as_deref())
                .await?;
            to_raw(page("resourceTemplates", templates))
        }
        "tools/call" => {
            let Ok(call) = serde_json::from_value::<ToolCallParams>(params.clone()) else {
                // More than a plain call (a task): the typed way.
                // Shaped as the plain call's answer is.
                let answer = gateway.call_tool(parse(params)?, origin).await?;
                return raw_text(typed_answer_text(answer, origin.stateless)?);
            };
            let arguments = call
                .arguments
                .map(|arguments| to_raw(Value::Object(arguments)))
                .transpose()?;
            let call = ToolCall {
                name: &call.name,
                arguments: arguments.as_deref(),
                meta: call.meta.unwrap_or_default(),
                retry: Retry {
                    input_responses: call.input_responses,
                    request_state: call.request_state,
                },
            };
            raw_text(gateway.call_tool_text(call, origin).await?)
        }
        "prompts/get" => match gateway.get_prompt(parse(params)?, origin).await? {
            GetPromptResponse::Complete(result) => to_raw(result),
            GetPromptResponse::InputRequired(result) => to_raw(result),
            _ => Err(unknown_result()),
        },
        "resources/read" => match gateway.read_resource(parse(params)?, origin).await? {
            ReadResourceResponse::Complete(result) => to_raw(result),
            ReadResourceResponse::InputRequired(result) => to_raw(result),
            _ => Err(unknown_result()),
        },
        "completion/complete" => to_raw(gateway.complete(parse(params)?, origin).await?),
        other => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "method {other:?} is not available on /api/v1/mcp/proxy (no handshake is needed here)"
            ),
            None,
        )),
    }
}

fn unknown_result() -> ErrorData {
    ErrorData::internal_error(
        "the upstream answered with a kind of result this gateway does not know",
        None,
    )
}

fn parse<T: DeserializeOwned>(params: Value) -> Result<T, ErrorData> {
    serde_json::from_value(params)
        .map_err(|error| ErrorData::invalid_params(format!("invalid params: {error}"), None))
}

/// A result's JSON text, as the gateway wrote it.
fn raw_text(text: String) -> Result<Box<RawValue>, ErrorData> {
    RawValue::from_string(text).map_err(|error| ErrorData::internal_error(error.to_string(), None))
}

fn to_raw(result: impl Serialize) -> Result<Box<RawValue>, ErrorData> {
    serde_json::value::to_raw_value(&result)
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))
}

/// The params of a `tools/call`: the router reads the name, `_meta` and a retry's fields,
/// and passes the arguments on as they are.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolCallParams {
    name: String,
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta")]
    meta: Option<Map<String, Value>>,
    #[serde(rename = "inputResponses")]
    input_responses: Option<InputResponses>,
    #[serde(rename = "requestState")]
    request_state: Option<String>,
}

/// A list's page as a 2026-07-28 result: its items under `key`, the cursor, the hints.
fn page<T: Serialize>(key: &str, page: Page<T>) -> Value {
    let mut result = Map::new();
    result.insert(key.to_owned(), json!(page.items));
    if let Some(next) = page.next_cursor {
        result.insert("nextCursor".into(), Value::String(next));
    }
    result.insert("ttlMs".into(), json!(page.ttl_ms));
    result.insert("cacheScope".into(), json!(page.cache_scope));
    Value::Object(result)
}

fn reply(status: StatusCode, id: Value, outcome: Result<Box<RawValue>, ErrorData>) -> Response {
    let id = id.to_string();
    let body = match outcome {
        Ok(result) => result_text(&id, result.get()),
        Err(error) => error_text(&id, &error),
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
