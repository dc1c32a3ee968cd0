//! `/api/v1/mcp/services`: the upstreams, the config file's (read-only here) and those
//! registered through the API (stored in the registry, started and stopped live).
//!
//! A service is a `proxy.yaml` upstream entry plus its `name`, in JSON: one schema and one
//! validation, whichever door it comes in by.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AdminState,
    auth::Caller,
    error::{ApiError, Body, ErrorBody},
};
use crate::{
    config::{Config, UpstreamConfig, is_shown_form},
    security::check_url,
    upstream::Upstream,
};

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new()
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
        .routes(routes!(restart_service))
}

/// A service as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Service {
    pub(super) name: String,
    /// `config` (from proxy.yaml: read-only through the API) or `api`.
    pub(super) origin: &'static str,
    /// The entry, with the values of `env` and `headers` hidden.
    #[serde(flatten)]
    pub(super) spec: UpstreamConfig,
    /// `starting`, `ready`, `degraded` (failed; restarting soon), `failed` (crash loop:
    /// restarting after a long pause), `disabled` or `stopped`.
    pub(super) state: &'static str,
    /// Why it is down, when it is.
    pub(super) reason: Option<String>,
    /// The most recent failure, also after it recovered.
    pub(super) last_error: Option<String>,
    /// The last lines its process wrote to stderr (stdio services).
    pub(super) stderr_tail: Vec<String>,
    pub(super) protocol_version: Option<String>,
    /// Tools it contributes to the catalog.
    pub(super) tools: usize,
}

/// A new service: a `proxy.yaml` upstream entry plus its name.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "describes the request for the OpenAPI document")]
pub(super) struct NewService {
    /// 1-32 characters of a-z, 0-9 and '-'.
    name: String,
    #[schema(inline)]
    spec: UpstreamConfig,
}

pub(super) fn view(state: &AdminState, upstream: &Upstream) -> Service {
    let spec = upstream.config().redacted();
    let current = upstream.state();
    Service {
        name: upstream.name().to_owned(),
        origin: origin(state, upstream.name()),
        spec,
        state: current.phase.as_str(),
        reason: current.phase.failure().map(str::to_owned),
        last_error: upstream.last_error(),
        stderr_tail: upstream.stderr_tail(),
        protocol_version: current.protocol_version.as_ref().map(|v| v.to_string()),
        tools: state.gateway.catalog().tool_count(upstream),
    }
}

fn origin(state: &AdminState, name: &str) -> &'static str {
    if state.config.upstreams.contains_key(name) {
        "config"
    } else {
        "api"
    }
}

fn find(state: &AdminState, name: &str) -> Result<Arc<Upstream>, ApiError> {
    state
        .gateway
        .upstream(name)
        .ok_or_else(|| ApiError::not_found(format!("no service named {name:?}")))
}

fn writable(state: &AdminState, name: &str) -> Result<(), ApiError> {
    if origin(state, name) == "config" {
        return Err(ApiError::conflict(format!(
            "service {name:?} is defined in proxy.yaml: change it there"
        )));
    }
    Ok(())
}

/// Checks an entry that came through the API: the config file's rules, then the spawn
/// policy (commands only from `security.spawn_allowlist`; no loader or `PATH` overrides) and
/// the egress policy (no URL into internal ranges unless `security.allow_private_urls`).
pub(super) async fn check_entry(
    config: &Config,
    name: &str,
    entry: &UpstreamConfig,
) -> Result<(), ApiError> {
    Config::validate_upstream(name, entry)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    if let Some(url) = &entry.url
        && !config.security.allow_private_urls
        && let Err(reason) = check_url(url).await
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "url_not_allowed",
            reason,
        ));
    }
    if let Some(command) = &entry.command {
        if !config.security.may_spawn(command) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "command_not_allowed",
                format!(
                    "command {command:?} is not in security.spawn_allowlist of proxy.yaml; nothing was started"
                ),
            ));
        }
        if let Some(name) = entry
            .env
            .keys()
            .find(|key| key.starts_with("LD_") || key.as_str() == "PATH")
        {
            return Err(ApiError::bad_request(format!(
                "env {name} may not be set for a service registered through the API"
            )));
        }
    }
    Ok(())
}

/// Splits `{"name": ..., <entry>}` into the name and the entry.
pub(super) fn parse_new(
    mut body: Map<String, Value>,
) -> Result<(String, UpstreamConfig), ApiError> {
    let name = match body.remove("name") {
        Some(Value::String(name)) => name,
        _ => return Err(ApiError::bad_request("`name` (a string) is required")),
    };
    let entry = serde_json::from_value(Value::Object(body))
        .map_err(|error| ApiError::bad_request(format!("not a valid service: {error}")))?;
    Ok((name, entry))
}

/// Registers, stores and starts `entry`, answering with its view.
pub(super) async fn register(
    state: &AdminState,
    name: &str,
    entry: UpstreamConfig,
) -> Result<Service, ApiError> {
    check_entry(&state.config, name, &entry).await?;
    let _serial = state.services_lock.lock().await;
    if state.gateway.upstream(name).is_some() {
        return Err(ApiError::conflict(format!(
            "a service named {name:?} exists"
        )));
    }
    state.registry.insert_service(name, &entry).await?;
    if let Err(error) = state.gateway.add_upstream(name, entry) {
        let _ = state.registry.delete_service(name).await;
        return Err(error.into());
    }
    tracing::info!(service = name, "service registered");
    let upstream = find(state, name)?;
    Ok(view(state, &upstream))
}

/// Every service: the config file's in order, then those registered through the API.
#[utoipa::path(get, path = "/api/v1/mcp/services", tag = "services",
    responses((status = 200, body = Vec<Service>, description = "OK"), (status = 401, body = ErrorBody, description = "No valid bearer token")),
    security(("bearer" = [])))]
async fn list_services(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
) -> Json<Vec<Service>> {
    Json(
        state
            .gateway
            .upstreams()
            .iter()
            .map(|upstream| view(&state, upstream))
            .collect(),
    )
}

/// Registers a service and starts it. It is stored, so it comes back after a restart.
/// The answer comes at once: the service becomes callable when it is ready (see `state`),
/// and connected MCP clients are told their tool list changed.
#[utoipa::path(post, path = "/api/v1/mcp/services", tag = "services",
    request_body = NewService,
    responses(
        (status = 201, body = Service, description = "Created"),
        (status = 400, body = ErrorBody, description = "Not a valid service, or its command is not in the spawn allowlist (nothing is started)"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 409, body = ErrorBody, description = "A service of that name exists"),
    ),
    security(("bearer" = [])))]
async fn create_service(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    Body(body): Body<Map<String, Value>>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let (name, entry) = parse_new(body)?;
    let service = register(&state, &name, entry).await?;
    Ok((StatusCode::CREATED, Json(service)))
}

/// One service.
#[utoipa::path(get, path = "/api/v1/mcp/services/{name}", tag = "services",
    params(("name" = String, Path)),
    responses((status = 200, body = Service, description = "OK"), (status = 401, body = ErrorBody, description = "No valid bearer token"), (status = 404, body = ErrorBody, description = "Not found")),
    security(("bearer" = [])))]
async fn get_service(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Service>, ApiError> {
    let upstream = find(&state, &name)?;
    Ok(Json(view(&state, &upstream)))
}

/// Changes a service registered through the API with a JSON merge patch of its entry
/// (`{"disabled": true}` stops it; `null` removes a key). It restarts with the new entry.
#[utoipa::path(patch, path = "/api/v1/mcp/services/{name}", tag = "services",
    params(("name" = String, Path)),
    request_body(content = Object, description = "A JSON merge patch (RFC 7386) of the entry"),
    responses(
        (status = 200, body = Service, description = "OK"),
        (status = 400, body = ErrorBody, description = "Bad request"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 404, body = ErrorBody, description = "Not found"),
        (status = 409, body = ErrorBody, description = "The service is defined in proxy.yaml"),
    ),
    security(("bearer" = [])))]
async fn update_service(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    Path(name): Path<String>,
    Body(patch): Body<Map<String, Value>>,
) -> Result<Json<Service>, ApiError> {
    change(&state, &name, patch).await.map(Json)
}

/// Changes the API-registered service `name` by a JSON merge patch of its entry and
/// restarts it with the new entry.
pub(super) async fn change(
    state: &AdminState,
    name: &str,
    patch: Map<String, Value>,
) -> Result<Service, ApiError> {
    let current = find(state, name)?;
    writable(state, name)?;
    if patch
        .get("name")
        .is_some_and(|new| new.as_str() != Some(name))
    {
        return Err(ApiError::bad_request(
            "a service cannot be renamed: delete it and add it again",
        ));
    }
    let mut entry = serde_json::to_value(current.config())
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let mut patch = Value::Object(patch);
    if let Value::Object(patch) = &mut patch {
        patch.remove("name");
    }
    merge_patch(&mut entry, patch);
    let entry: UpstreamConfig = serde_json::from_value(entry)
        .map_err(|error| ApiError::bad_request(format!("not a valid service: {error}")))?;
    check_entry(&state.config, name, &entry).await?;
    let _serial = state.services_lock.lock().await;
    state.registry.update_service(name, &entry).await?;
    state.gateway.replace_upstream(name, entry).await?;
    tracing::info!(service = %name, "service changed");
    let upstream = find(state, name)?;
    Ok(view(state, &upstream))
}

/// Stops a service registered through the API (its processes are gone when this answers)
/// and forgets it.
#[utoipa::path(delete, path = "/api/v1/mcp/services/{name}", tag = "services",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Stopped and deleted"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 404, body = ErrorBody, description = "Not found"),
        (status = 409, body = ErrorBody, description = "The service is defined in proxy.yaml"),
    ),
    security(("bearer" = [])))]
async fn delete_service(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove(&state, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops the API-registered service `name` and forgets it.
pub(super) async fn remove(state: &AdminState, name: &str) -> Result<(), ApiError> {
    find(state, name)?;
    writable(state, name)?;
    let _serial = state.services_lock.lock().await;
    state.gateway.remove_upstream(name).await?;
    state.registry.delete_service(name).await?;
    tracing::info!(service = %name, "service deleted");
    Ok(())
}

/// Stops and starts a service again (any service, the config file's too).
#[utoipa::path(post, path = "/api/v1/mcp/services/{name}/restart", tag = "services",
    params(("name" = String, Path)),
    responses(
        (status = 202, body = Service, description = "Restarting: `state` says when it is ready"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 404, body = ErrorBody, description = "Not found"),
    ),
    security(("bearer" = [])))]
async fn restart_service(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Service>), ApiError> {
    let service = restart(&state, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(service)))
}

/// Stops and starts the service `name` again.
pub(super) async fn restart(state: &AdminState, name: &str) -> Result<Service, ApiError> {
    find(state, name)?;
    let _serial = state.services_lock.lock().await;
    state.gateway.restart_upstream(name).await?;
    tracing::info!(service = %name, "service restarted");
    let upstream = find(state, name)?;
    Ok(view(state, &upstream))
}

/// RFC 7386: objects merge key by key, `null` removes, anything else replaces. A redacted
/// secret sent back unchanged keeps the stored value.
pub(super) fn merge_patch(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        unreachable!("made an object above")
    };
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.remove(&key);
            }
            Value::String(sent)
                if target
                    .get(&key)
                    .and_then(Value::as_str)
                    .is_some_and(|kept| is_shown_form(kept, &sent)) => {}
            value => merge_patch(target.entry(key).or_insert(Value::Null), value),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::REDACTED;

    #[test]
    fn a_merge_patch_merges_removes_and_keeps_redacted_secrets() {
        let mut entry =
            json!({"command": "a", "env": {"TOKEN": "secret", "X": "1"}, "args": ["x"]});
        merge_patch(
            &mut entry,
            json!({"env": {"TOKEN": REDACTED, "X": null, "Y": "2"}, "args": ["y"], "disabled": true}),
        );
        assert_eq!(
            entry,
            json!({"command": "a", "env": {"TOKEN": "secret", "Y": "2"}, "args": ["y"], "disabled": true})
        );
        let mut entry = json!({"url": "https://bot:pass@h/mcp"});
        merge_patch(&mut entry, json!({"url": "https://bot:********@h/mcp"}));
        assert_eq!(entry, json!({"url": "https://bot:pass@h/mcp"}));
    }
}
