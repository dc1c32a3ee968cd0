//! Which MCP request methods exist, in which protocol era, and the error for a request
//! rmcp could not type: an unknown method (-32601) or a known one with bad params (-32602).

use rmcp::{
    ErrorData,
    model::{CallToolRequestParams, CustomRequest, ErrorCode},
};

/// The MCP request methods. rmcp hands a request whose params do not fit the method's type to
/// `on_custom_request`, so that is where a known method with bad params gets `-32602`.
const MCP_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
];

/// Methods the 2026-07-28 revision removed: a request of that revision gets "method not
/// found" for them (and rmcp answers that with HTTP 404), whatever its params.
const SESSION_ERA_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// The error for a request rmcp could not type: bad params of a known method, or an unknown one.
pub(super) fn untyped_request_error(request: &CustomRequest, stateless: bool) -> ErrorData {
    let method = request.method.as_str();
    let removed = stateless && SESSION_ERA_METHODS.contains(&method);
    if removed || !MCP_METHODS.contains(&method) {
        return ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
            None,
        );
    }
    let params = request.params.clone().unwrap_or(serde_json::Value::Null);
    let detail = match method {
        "tools/call" => serde_json::from_value::<CallToolRequestParams>(params)
            .err()
            .map(|error| error.to_string()),
        _ => None,
    };
    ErrorData::invalid_params(
        match detail {
            Some(detail) => format!("Invalid params for {method}: {detail}"),
            None => format!("Invalid params for {method}"),
        },
        None,
    )
}
