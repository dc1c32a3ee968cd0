//! Errors of the request path, tagged by where they came from, and the one place that maps
//! them to JSON-RPC errors.
//!
//! The source decides the code: a client mistake is `-32602`/`-32601`, a missing or failed
//! upstream is `-32603` with a message that names it, an error the upstream itself returned is
//! passed through unchanged (it is the upstream's answer, not ours).

use std::time::Duration;

use rmcp::{ErrorData, model::ErrorCode};
use serde_json::json;

/// Why a proxied request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Client: the name is in no upstream's catalog.
    #[error("Unknown tool: {name}")]
    UnknownTool { name: String },
    /// Client: the name is in no upstream's prompt list.
    #[error("Unknown prompt: {name}")]
    UnknownPrompt { name: String },
    /// Client: no upstream listed this URI or has a template matching it.
    #[error("Resource not found: {uri}")]
    UnknownResource { uri: String },
    /// Client: the endpoint names a virtual server the configuration no longer has.
    #[error("no virtual server named {name:?} (was it removed from the configuration?)")]
    UnknownVirtualServer { name: String },
    /// Client: the arguments of a call are not a JSON object.
    #[error("invalid arguments: {reason}")]
    InvalidArguments { reason: String },
    /// Client: a pagination cursor we did not hand out.
    #[error("invalid cursor: {cursor:?}")]
    InvalidCursor { cursor: String },
    /// Client: a tool whose calls run as tasks alone, from a client that does not take tasks
    /// (`-32021`, naming the tasks extension it must declare).
    #[error("{tool} runs as a task: declare the io.modelcontextprotocol/tasks extension")]
    TasksRequired { tool: String },
    /// Client: no task of this id is kept for the caller (it expired, or never was).
    #[error("Unknown task: {id}")]
    UnknownTask { id: String },
    /// Client: a `requestState` this gateway did not issue for this request, or one already
    /// used or expired.
    #[error("requestState refused: {reason}")]
    InvalidRequestState { reason: String },
    /// Upstream: not connected (failed to start, exited, still starting past the deadline).
    #[error("upstream '{upstream}' is unavailable: {reason}")]
    UpstreamUnavailable { upstream: String, reason: String },
    /// Upstream, `credentials: per-user`: the caller has not signed in to it; a client that
    /// takes URL elicitations is told where (`-32042`, the spec's `URLElicitationRequired`).
    #[error("upstream '{upstream}' needs you to sign in to it: open {url}")]
    SignInRequired {
        upstream: String,
        url: String,
        /// The id of the address, for the client to match the elicitation by.
        elicitation_id: String,
    },
    /// Upstream: it did not answer within the call deadline; the call was cancelled upstream.
    #[error("upstream '{upstream}' did not answer within {timeout:?}; the call was cancelled")]
    UpstreamTimeout { upstream: String, timeout: Duration },
    /// Upstream: the connection failed while the call was in flight.
    #[error("upstream '{upstream}' failed during the call: {reason}")]
    UpstreamFailed { upstream: String, reason: String },
    /// Client: it cancelled the request (or went away) while it was in flight. Not a failure
    /// of the upstream: metrics and the call log count it apart.
    #[error("the client cancelled the request")]
    Cancelled,
    /// Gateway: it is stopping; the call was refused or cancelled.
    #[error("the gateway is shutting down; the call was cancelled")]
    ShuttingDown,
    /// Client: the credential the request came with ended (revoked, logged out, expired)
    /// while it was in flight; the call was cancelled.
    #[error("{reason}; the call was cancelled")]
    CredentialEnded { reason: String },
    /// Gateway: a fault of its own (a request it could not encode).
    #[error("internal error of the gateway: {reason}")]
    Internal { reason: String },
    /// Upstream: a JSON-RPC error the upstream returned, forwarded as is.
    #[error("upstream '{upstream}' returned an error: {error}")]
    UpstreamError { upstream: String, error: ErrorData },
}

impl GatewayError {
    /// The upstream this error is about, if any.
    pub fn upstream(&self) -> Option<&str> {
        match self {
            Self::UnknownTool { .. }
            | Self::UnknownPrompt { .. }
            | Self::UnknownResource { .. }
            | Self::UnknownVirtualServer { .. }
            | Self::InvalidCursor { .. }
            | Self::InvalidArguments { .. }
            | Self::InvalidRequestState { .. }
            | Self::TasksRequired { .. }
            | Self::UnknownTask { .. }
            | Self::Cancelled
            | Self::Internal { .. }
            | Self::ShuttingDown
            | Self::CredentialEnded { .. } => None,
            Self::UpstreamUnavailable { upstream, .. }
            | Self::SignInRequired { upstream, .. }
            | Self::UpstreamTimeout { upstream, .. }
            | Self::UpstreamFailed { upstream, .. }
            | Self::UpstreamError { upstream, .. } => Some(upstream),
        }
    }
}

/// The spec's `URLElicitationRequiredError` (2025-11-25): the request can go on once the user
/// has been to the URLs in its data.
pub const URL_ELICITATION_REQUIRED: ErrorCode = ErrorCode(-32042);

/// What a user is shown beside the address where they sign in to `upstream`.
pub fn sign_in_message(upstream: &str) -> String {
    format!("Sign in to {upstream} to use its tools through this gateway.")
}

impl From<GatewayError> for ErrorData {
    fn from(error: GatewayError) -> Self {
        let message = error.to_string();
        match error {
            GatewayError::UnknownTool { .. }
            | GatewayError::UnknownPrompt { .. }
            | GatewayError::UnknownVirtualServer { .. }
            | GatewayError::InvalidCursor { .. }
            | GatewayError::InvalidArguments { .. }
            | GatewayError::InvalidRequestState { .. }
            | GatewayError::UnknownTask { .. } => ErrorData::invalid_params(message, None),
            GatewayError::TasksRequired { .. } => {
                let mut error = ErrorData::missing_required_client_capability(
                    rmcp::model::ClientCapabilities::builder()
                        .enable_tasks()
                        .build(),
                );
                error.message = message.into();
                error
            }
            // rmcp turns this into -32602 for 2026-07-28 clients, as that revision asks.
            GatewayError::UnknownResource { ref uri } => {
                ErrorData::resource_not_found(message, Some(json!({ "uri": uri })))
            }
            GatewayError::UpstreamError { error, .. } => error,
            GatewayError::SignInRequired {
                ref upstream,
                ref url,
                ref elicitation_id,
            } => ErrorData::new(
                URL_ELICITATION_REQUIRED,
                message,
                Some(json!({
                    "elicitations": [{
                        "mode": "url",
                        "elicitationId": elicitation_id,
                        "url": url,
                        "message": sign_in_message(upstream),
                    }],
                    "upstream": upstream,
                })),
            ),
            GatewayError::Cancelled
            | GatewayError::Internal { .. }
            | GatewayError::ShuttingDown
            | GatewayError::CredentialEnded { .. } => {
                ErrorData::new(ErrorCode::INTERNAL_ERROR, message, None)
            }
            GatewayError::UpstreamUnavailable { ref upstream, .. }
            | GatewayError::UpstreamFailed { ref upstream, .. }
            | GatewayError::UpstreamTimeout { ref upstream, .. } => ErrorData::new(
                ErrorCode::INTERNAL_ERROR,
                message,
                Some(json!({ "upstream": upstream })),
            ),
        }
    }
}

/// Why a request could not be sent: `error` by its causes ("error sending request for url
/// (…): client error (Connect): tcp connect error: Connection refused") rather than by a
/// wrapper whose text names Rust types.
pub fn cannot_send(error: &(dyn std::error::Error + 'static)) -> String {
    format!("cannot send to it: {}", with_causes(error))
}

/// The cause an error holds without giving it as its `source`: rmcp's HTTP client error
/// wraps reqwest's so, and reqwest's causes (`dns error`, `Connection refused`) are the
/// point.
fn hidden_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    match error.downcast_ref::<StreamableHttpError<reqwest::Error>>()? {
        StreamableHttpError::Client(cause) => Some(cause),
        _ => None,
    }
}

/// `error`'s text followed by each of its causes', each said once (an error may repeat its
/// cause in its own text). rmcp's transport errors, whose text is the transport's Rust type
/// name (`Transport [WorkerTransport<…>] error: …`), are said by their causes alone.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(error) = next {
        next = error.source().or_else(|| hidden_cause(error));
        if error
            .downcast_ref::<rmcp::transport::DynamicTransportError>()
            .is_some()
        {
            continue;
        }
        let own = error.to_string();
        // Its own words, without its cause's when it ends with them.
        let own = match next.map(ToString::to_string) {
            Some(cause) if !cause.is_empty() && own.ends_with(&cause) => own
                [..own.len() - cause.len()]
                .trim_end_matches([':', ' '])
                .to_owned(),
            _ => own,
        };
        if own.is_empty() || text.contains(&own) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&own);
    }
    text
}
