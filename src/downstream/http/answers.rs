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

/// Whether `path` is where a client that signs in with OAuth looks for how: the metadata of
/// RFC 9728 and RFC 8414 (and OpenID's), and the endpoints MCP's revision of 2025-03-26 took
/// by default when there is none (mcp-remote still tries them).
pub(super) fn is_oauth_path(path: &str) -> bool {
    [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ]
    .iter()
    .any(|metadata| path.starts_with(metadata))
        || matches!(path, "/register" | "/authorize" | "/token")
}

/// 404 at an [`is_oauth_path`] of a gateway that takes API keys alone: what to send instead,
/// in OAuth's own shape (`error_description`), which clients show their user (mcp-remote
/// prints the body of a refused registration). Without it they saw "no route for /register".
pub(super) fn no_oauth_sign_in() -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({
            "error": "not_found",
            "error_description": "this gateway signs nobody in with OAuth: it takes API keys. \
                Send `Authorization: Bearer <API key>` with every request (mcp-remote: \
                --header \"Authorization: Bearer <API key>\"); an admin makes keys in the \
                console or at POST /api/v1/auth/keys",
        }),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_places_an_oauth_client_looks_are_known_and_no_others() {
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/register",
            "/authorize",
            "/token",
        ] {
            assert!(is_oauth_path(path), "{path}");
        }
        for path in [
            "/mcp",
            "/registered",
            "/api/v1/auth/keys",
            "/.well-known/other",
        ] {
            assert!(!is_oauth_path(path), "{path}");
        }
    }
}
