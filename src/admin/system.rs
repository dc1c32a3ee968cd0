//! `/api/v1/system`: health (no token needed), status, and file upload.

use std::sync::Arc;

use axum::{
    Json,
    extract::{DefaultBodyLimit, Multipart, State},
    http::StatusCode,
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AdminState,
    auth::Caller,
    error::{ApiError, ErrorBody},
    uploads,
};
use crate::{
    config::Config,
    gateway::{Gateway, Reconfigured},
    reload::Trigger,
    upstream::Phase,
};

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new()
        .routes(routes!(get_health))
        .routes(routes!(status))
        .routes(routes!(upload))
        .routes(routes!(reload))
}

/// Loads the config file again and applies what changed: only the upstreams that differ
/// are stopped, started or restarted, and connected clients are told their lists changed.
/// An invalid file is refused (422) and the running configuration stays. Admins only.
#[utoipa::path(post, path = "/api/v1/system/reload", tag = "system",
    responses(
        (status = 200, body = Reconfigured, description = "Applied"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 403, body = ErrorBody, description = "Not an admin"),
        (status = 409, body = ErrorBody, description = "The gateway was not started from a config file"),
        (status = 422, body = ErrorBody, description = "The file is invalid; nothing changed"),
    ),
    security(("bearer" = [])))]
async fn reload(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
) -> Result<Json<Reconfigured>, ApiError> {
    if !caller.is_admin {
        return Err(ApiError::forbidden(
            "reloading the configuration needs an admin",
        ));
    }
    let reloader = state
        .reloader
        .as_ref()
        .ok_or_else(|| ApiError::conflict("the gateway was not started from a config file"))?;
    match reloader.reload(Trigger::Api).await {
        Ok(report) => Ok(Json(report)),
        Err(error) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            format!("the running configuration stays: {error}"),
        )),
    }
}

/// `GET /api/v1/system/health`: 200 while the gateway serves, with every upstream's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `starting` until every upstream has had its first try; then `ok` when every enabled
    /// upstream is ready, else `degraded`.
    pub status: &'static str,
    pub version: &'static str,
    pub upstreams: Vec<UpstreamHealth>,
}

/// One upstream in [`Health`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpstreamHealth {
    pub name: String,
    /// `starting`, `ready`, `degraded` (restarting soon), `failed`, `disabled` or `stopped`.
    pub state: &'static str,
    pub transport: &'static str,
    pub tools: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The most recent failure, also once it is running again: why its last connection
    /// ended, when our side ended it (a message over `limits.max_line_bytes`, one that cannot
    /// be read), with the process's exit status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub fn health(gateway: &Gateway) -> Health {
    let catalog = gateway.catalog();
    let upstreams: Vec<UpstreamHealth> = gateway
        .upstreams()
        .iter()
        .map(|upstream| {
            let state = upstream.state();
            UpstreamHealth {
                name: upstream.name().to_owned(),
                state: state.phase.as_str(),
                transport: upstream.config().transport_kind().as_str(),
                tools: catalog.tool_count(upstream),
                protocol_version: state.protocol_version.as_ref().map(|v| v.to_string()),
                // While it starts again after a failure, that failure.
                error: state.phase.failure().map(str::to_owned).or_else(|| {
                    (state.phase == Phase::Starting)
                        .then(|| upstream.last_error())
                        .flatten()
                }),
                last_error: upstream.last_error(),
            }
        })
        .collect();
    // `starting` only until the first start is over: later, an upstream starting again
    // after a failure leaves the gateway degraded, not starting.
    let status = if !gateway.is_started() {
        "starting"
    } else if upstreams
        .iter()
        .all(|u| u.state == "ready" || u.state == "disabled")
    {
        "ok"
    } else {
        "degraded"
    };
    Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        upstreams,
    }
}

/// Whether the gateway serves, and each upstream's state. Needs no token.
#[utoipa::path(get, path = "/api/v1/system/health", tag = "system",
    responses((status = 200, body = Health, description = "OK")))]
async fn get_health(State(state): State<Arc<AdminState>>) -> Json<Health> {
    Json(health(&state.gateway))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Status {
    version: &'static str,
    uptime_secs: u64,
    /// Upstreams by state.
    upstreams: UpstreamCounts,
    /// Open session-era client sessions.
    sessions: usize,
    /// Recorded tool calls, and how many of them did not succeed.
    calls: i64,
    errors: i64,
    tools: usize,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
struct UpstreamCounts {
    total: usize,
    ready: usize,
    starting: usize,
    /// Failed, and restarting soon.
    degraded: usize,
    /// Failed, and not restarting yet (a crash loop's pause), or stopped.
    failed: usize,
    disabled: usize,
    /// OAuth upstreams waiting for a sign-in.
    needs_authorization: usize,
}

/// Version, uptime, upstreams, sessions and calls.
#[utoipa::path(get, path = "/api/v1/system/status", tag = "system",
    responses((status = 200, body = Status, description = "OK"), (status = 401, body = ErrorBody, description = "No valid bearer token")),
    security(("bearer" = [])))]
async fn status(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
) -> Result<Json<Status>, ApiError> {
    let mut upstreams = UpstreamCounts::default();
    for upstream in state.gateway.upstreams().iter() {
        upstreams.total += 1;
        match upstream.state().phase {
            Phase::Ready => upstreams.ready += 1,
            Phase::Starting => upstreams.starting += 1,
            Phase::Degraded(_) => upstreams.degraded += 1,
            Phase::Failed(_) | Phase::Stopped => upstreams.failed += 1,
            Phase::Disabled => upstreams.disabled += 1,
            Phase::NeedsAuthorization(_) => upstreams.needs_authorization += 1,
        }
    }
    let (calls, errors) = state.registry.call_counts().await?;
    Ok(Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_secs: state.started.elapsed().as_secs(),
        upstreams,
        sessions: state.gateway.session_count(),
        calls,
        errors,
        tools: state.gateway.catalog().tools().len(),
    }))
}

/// The body limit for the routes: uploads may be as large as `limits.max_upload_bytes`
/// (plus room for the multipart framing); the upload handler counts the file itself.
pub(super) fn upload_body_limit(config: &Config) -> DefaultBodyLimit {
    DefaultBodyLimit::max(config.limits.max_upload_bytes.saturating_add(64 * 1024))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Uploaded {
    /// The stored file's name, under the data directory's `uploads/`.
    name: String,
    size: u64,
}

/// A multipart form upload: its `file` field is stored under the data directory's
/// `uploads/`, by its bare file name.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "describes the form for the OpenAPI document")]
struct UploadForm {
    #[schema(format = Binary, content_media_type = "application/octet-stream")]
    file: String,
}

/// Stores one uploaded file under the data directory. The name must be a plain file name
/// (no `/`, `\`, `..`, no leading `.`); an existing file of that name is not replaced.
#[utoipa::path(post, path = "/api/v1/system/upload", tag = "system",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = Uploaded, description = "Created"),
        (status = 400, body = ErrorBody, description = "No `file` field, or a name that is not a plain file name"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 409, body = ErrorBody, description = "A file of that name exists"),
        (status = 413, body = ErrorBody, description = "Larger than limits.max_upload_bytes"),
    ),
    security(("bearer" = [])))]
async fn upload(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    mut form: Multipart,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the file is larger than limits.max_upload_bytes ({} bytes)",
                state.config.limits.max_upload_bytes
            ),
        )
    };
    let multipart_error = |error: axum::extract::multipart::MultipartError| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(format!("not a valid multipart form: {}", error.body_text()))
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = plain_file_name(field.file_name().unwrap_or_default())?;
        if tokio::fs::try_exists(uploads::uploads_dir(&state).join(&name))
            .await
            .unwrap_or(false)
        {
            return Err(ApiError::conflict(format!(
                "an upload named {name:?} exists"
            )));
        }
        let mut content = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            if content.len() + chunk.len() > state.config.limits.max_upload_bytes {
                return Err(too_large());
            }
            content.extend_from_slice(&chunk);
        }
        let size = content.len() as u64;
        uploads::keep(&state, &name, &content).await?;
        tracing::info!(file = %name, size, "upload stored");
        return Ok((StatusCode::CREATED, Json(Uploaded { name, size })));
    }
    Err(ApiError::bad_request("the form has no `file` field"))
}

/// `name` if it is a plain file name that stays inside the upload directory.
fn plain_file_name(name: &str) -> Result<String, ApiError> {
    if uploads::is_plain_file_name(name) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(format!(
            "{name:?} is not a plain file name (no '/', '\\\\', '..' or leading '.')"
        )))
    }
}
