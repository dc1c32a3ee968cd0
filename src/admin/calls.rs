//! `GET /api/v1/calls`: the call history, newest first, with filters and paging.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AdminState,
    auth::Caller,
    error::{ApiError, ErrorBody},
};
use crate::registry::{CallFilter, CallRecord};

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new().routes(routes!(list_calls))
}

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CallQuery {
    /// Only calls of this tool (as clients call it).
    tool: Option<String>,
    /// Only calls routed to this upstream.
    upstream: Option<String>,
    /// `ok`, `tool_error`, `input_required`, `cancelled` or `error`.
    outcome: Option<String>,
    /// Only calls from this client (`clientInfo.name`, or `rest`).
    client: Option<String>,
    /// Only calls of this user (an API key's or a login's; `principal` in the answer).
    user: Option<String>,
    /// Only calls at or after this time (milliseconds since the Unix epoch).
    since: Option<i64>,
    /// The `next` of the previous page.
    before: Option<i64>,
    /// Calls per page: 1 to 500, default 50.
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Calls {
    calls: Vec<CallRecord>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

/// Recorded tool calls, newest first. Calls are written in batches a moment after they end.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls",
    params(CallQuery),
    responses(
        (status = 200, body = Calls, description = "OK"),
        (status = 400, body = ErrorBody, description = "Bad request"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
    ),
    security(("bearer" = [])))]
async fn list_calls(
    State(state): State<Arc<AdminState>>,
    _caller: Caller,
    query: Result<Query<CallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Calls>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "`limit` must be 1 to {MAX_LIMIT}"
        )));
    }
    let page = state
        .registry
        .calls(CallFilter {
            tool: query.tool,
            upstream: query.upstream,
            outcome: query.outcome,
            client: query.client,
            principal: query.user,
            since: query.since,
            before: query.before,
            limit,
        })
        .await?;
    Ok(Json(Calls {
        calls: page.calls,
        next: page.next,
    }))
}
