//! The front door's own answers: refusals and errors, as JSON-RPC errors (what MCP clients
//! read) or the REST surface's `{"error": {...}}`.

use http::{Response, StatusCode, header};
use rmcp::{ErrorData, model::ServerJsonRpcMessage};

use super::Body;
use crate::downstream::endpoint::ScopeRefusal;

/// 404 for a virtual server that does not exist, 403 for another key's or a bound key's
/// that is gone.
pub(super) fn scope_refused(refusal: &ScopeRefusal) -> Response<Body> {
    let status = match refusal {
        ScopeRefusal::Unknown(_) => StatusCode::NOT_FOUND,
        ScopeRefusal::OtherServer { .. } | ScopeRefusal::BoundServerGone { .. } => {
            StatusCode::FORBIDDEN
        }
    };
    jsonrpc_error_response(
        status,
        ErrorData::invalid_request(refusal.to_string(), None),
    )
}

/// 401 for `/mcp`, `/ws` and `/metrics` without a valid token, as a JSON-RPC error (what MCP clients
/// read) with `WWW-Authenticate` (what they act on).
pub(super) fn unauthorized() -> Response<Body> {
    let mut response = jsonrpc_error_response(
        StatusCode::UNAUTHORIZED,
        ErrorData::invalid_request(
            "Unauthorized: send `Authorization: Bearer <API key>` (create one at POST /api/v1/auth/keys)",
            None,
        ),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"mcps\""),
    );
    response
}

pub(super) fn api_error(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": code, "message": message } })
}

pub(super) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

pub(super) fn message_response(
    status: StatusCode,
    message: &ServerJsonRpcMessage,
) -> Response<Body> {
    json_response(status, message)
}

/// A 503 for a limit reached (`what`), logged.
pub(super) fn unavailable(what: String) -> Response<Body> {
    tracing::warn!("refused: {what}");
    jsonrpc_error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorData::internal_error(format!("{what}; try again later"), None),
    )
}

pub(super) fn jsonrpc_error_response(status: StatusCode, error: ErrorData) -> Response<Body> {
    message_response(status, &ServerJsonRpcMessage::error(error, None))
}
