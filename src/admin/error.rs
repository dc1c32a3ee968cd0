//! The REST surface's errors: `{"error": {"code", "message"}}` with the HTTP status that fits,
//! and request bodies that refuse bad JSON with the same shape.

use axum::{
    Json,
    extract::{FromRequest, Request, rejection::JsonRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{error::GatewayError, gateway::LifecycleError, registry::RegistryError};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<std::time::Duration>,
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `unauthorized` or `not_found`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: try again after `wait`.
    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "API request failed");
        }
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let retry_after = self.retry_after;
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mcps\""),
            );
        }
        if let Some(wait) = retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Conflict(message) => Self::conflict(message),
            RegistryError::NotFound(message) => Self::not_found(message),
            RegistryError::Busy(message) => {
                Self::too_many_requests(message, std::time::Duration::from_secs(1))
            }
            other => Self::internal(other.to_string()),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(error: LifecycleError) -> Self {
        match error {
            LifecycleError::Duplicate(_) => Self::conflict(error.to_string()),
            LifecycleError::Unknown(_) => Self::not_found(error.to_string()),
            other => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                other.to_string(),
            ),
        }
    }
}

/// The status proxies (nginx first) log for a request its client gave up on.
const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(status) => status,
    Err(_) => unreachable!(),
};

impl From<GatewayError> for ApiError {
    fn from(error: GatewayError) -> Self {
        let (status, code) = match &error {
            GatewayError::UnknownTool { .. }
            | GatewayError::UnknownPrompt { .. }
            | GatewayError::UnknownResource { .. }
            | GatewayError::UnknownVirtualServer { .. }
            | GatewayError::UnknownTask { .. } => (StatusCode::NOT_FOUND, "not_found"),
            // The REST doors answer at once: a tool that runs as a task alone is not theirs.
            GatewayError::TasksRequired { .. } => (StatusCode::CONFLICT, "task_required"),
            GatewayError::InvalidCursor { .. }
            | GatewayError::InvalidArguments { .. }
            | GatewayError::InvalidRequestState { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request")
            }
            GatewayError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            GatewayError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            // Nobody reads it: the client went away. 499 is what proxies log for that.
            GatewayError::Cancelled => (CLIENT_CLOSED_REQUEST, "cancelled"),
            GatewayError::CredentialEnded { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            GatewayError::UpstreamUnavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable")
            }
            // The gateway's token is fine; the upstream needs the caller's own sign-in.
            GatewayError::SignInRequired { .. } => (StatusCode::FORBIDDEN, "sign_in_required"),
            GatewayError::UpstreamTimeout { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout")
            }
            GatewayError::UpstreamFailed { .. } | GatewayError::UpstreamError { .. } => {
                (StatusCode::BAD_GATEWAY, "upstream_error")
            }
        };
        Self::new(status, code, error.to_string())
    }
}

/// A JSON body whose rejections (not JSON, wrong shape, wrong content type) are [`ApiError`]s.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(rejection)),
        }
    }
}

fn rejected(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match rejection {
        JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
        JsonRejection::JsonSyntaxError(_) => "invalid_json",
        JsonRejection::JsonDataError(_) => "invalid_body",
        _ => "invalid_request",
    };
    ApiError::new(status, code, rejection.body_text())
}
