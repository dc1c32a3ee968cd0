//! Signing the gateway in to OAuth upstreams: an administrator asks for the authorization
//! URL, opens it in a browser, and the authorization server sends the browser back to
//! `/oauth/callback`, which finishes the sign-in and starts the upstream.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AdminState,
    auth::Caller,
    browser,
    error::{ApiError, ErrorBody},
};
use crate::{
    security::Principal,
    upstream::{CALLBACK_PATH, CLIENT_METADATA_PATH, NotTaken, UpstreamAuth},
};

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new().routes(routes!(authorize, sign_out))
}

/// The callback, outside `/api/v1`: the browser comes to it from the authorization server;
/// and the gateway's client metadata document, which authorization servers fetch.
pub(super) fn callback_route() -> axum::Router<Arc<AdminState>> {
    axum::Router::new()
        .route(CALLBACK_PATH, axum::routing::get(callback))
        .route(CLIENT_METADATA_PATH, axum::routing::get(client_metadata))
}

/// The gateway's Client ID Metadata Document; 404 unless its public URL is https.
async fn client_metadata(State(state): State<Arc<AdminState>>) -> Response {
    match state.gateway.oauth().client_metadata_document() {
        Some(document) => Json(document).into_response(),
        None => ApiError::not_found(
            "the gateway publishes its client metadata only under an https server.public_url",
        )
        .into_response(),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Authorization {
    /// Open this in a browser to sign the gateway in.
    authorization_url: String,
}

/// Starts signing the gateway in to an OAuth upstream (`oauth:` with `grant:
/// authorization_code`): answers the authorization server's URL to open in a browser. When
/// the sign-in is done there, the browser comes back to `/oauth/callback` and the upstream
/// starts. A newer request replaces the URL of an older one.
#[utoipa::path(post, path = "/api/v1/mcp/services/{name}/oauth/authorize", tag = "services",
    params(("name" = String, Path)),
    responses(
        (status = 200, body = Authorization, description = "The URL to open"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 403, body = ErrorBody, description = "Not an administrator"),
        (status = 404, body = ErrorBody, description = "Not found"),
        (status = 409, body = ErrorBody, description = "The service does not sign in through a browser"),
        (status = 502, body = ErrorBody, description = "Its authorization server could not be used"),
    ),
    security(("bearer" = [])))]
async fn authorize(
    State(state): State<Arc<AdminState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Authorization>, ApiError> {
    let auth = signing_in(&state, &caller.0, &name)?;
    // An administrator's sign-in: no page of the gateway's came before, no browser to bind.
    let authorization_url = auth
        .begin(None)
        .await
        .map_err(|why| ApiError::new(StatusCode::BAD_GATEWAY, "oauth_failed", why))?;
    tracing::info!(service = %name, "sign-in started");
    Ok(Json(Authorization { authorization_url }))
}

/// Forgets the gateway's sign-in to an OAuth upstream (its tokens and the client it
/// registered); the upstream waits for a new sign-in.
#[utoipa::path(delete, path = "/api/v1/mcp/services/{name}/oauth", tag = "services",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 403, body = ErrorBody, description = "Not an administrator"),
        (status = 404, body = ErrorBody, description = "Not found"),
        (status = 409, body = ErrorBody, description = "The service does not use OAuth"),
    ),
    security(("bearer" = [])))]
async fn sign_out(
    State(state): State<Arc<AdminState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let auth = signing_in(&state, &caller.0, &name)?;
    auth.sign_out().await.map_err(ApiError::internal)?;
    tracing::info!(service = %name, "signed out");
    Ok(StatusCode::NO_CONTENT)
}

/// The sign-in of upstream `name`, for an administrator (the API's routes and the console's
/// buttons).
pub(super) fn signing_in(
    state: &AdminState,
    caller: &Principal,
    name: &str,
) -> Result<Arc<UpstreamAuth>, ApiError> {
    if !caller.is_admin {
        return Err(ApiError::forbidden(
            "signing the gateway in to an upstream is for administrators",
        ));
    }
    let upstream = state
        .gateway
        .upstream(name)
        .ok_or_else(|| ApiError::not_found(format!("no service named {name:?}")))?;
    upstream.oauth().cloned().ok_or_else(|| {
        ApiError::conflict(format!(
            "service {name:?} does not use OAuth: give it an `oauth:` block"
        ))
    })
}

/// What an authorization server puts on its redirect back (RFC 6749 §4.1.2, RFC 9207): an
/// upstream's, or the identity provider's.
#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    pub state: Option<String>,
    pub code: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

async fn callback(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(sign_in) = query.state.as_deref() else {
        return page(
            StatusCode::BAD_REQUEST,
            "This is not a sign-in's answer: it has no state.",
        );
    };
    let auth = match state
        .gateway
        .oauth()
        .take(sign_in, browser::id_of(&headers))
    {
        Ok(auth) => auth,
        Err(NotTaken::Unknown) => {
            return page(
                StatusCode::BAD_REQUEST,
                "This sign-in is unknown, finished or expired: start it again.",
            );
        }
        Err(NotTaken::OtherBrowser) => {
            tracing::warn!("a user's sign-in was answered in another browser than its own");
            return page(
                StatusCode::FORBIDDEN,
                "This sign-in was started in another browser: nobody was signed in. Open the \
                 address your own client gave you, in this browser.",
            );
        }
    };
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().unwrap_or("");
        return page(
            StatusCode::BAD_REQUEST,
            &format!("The authorization server refused the sign-in: {error} {detail}"),
        );
    }
    let Some(code) = query.code.as_deref() else {
        return page(
            StatusCode::BAD_REQUEST,
            "The answer has no authorization code.",
        );
    };
    match auth.finish(sign_in, code, query.iss.as_deref()).await {
        Ok(()) if auth.owner().is_some() => page(
            StatusCode::OK,
            &format!(
                "You are signed in to {}. Close this window and go back to your client.",
                auth.upstream()
            ),
        ),
        Ok(()) => signed_in_page(auth.upstream()),
        Err(why) => {
            tracing::warn!(%why, "a sign-in failed");
            page(
                StatusCode::BAD_REQUEST,
                &format!("The sign-in failed: {why}"),
            )
        }
    }
}

/// `text` safe inside HTML.
pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where an administrator's sign-in ends: the console, where the upstream now starts.
fn signed_in_page(upstream: &str) -> Response {
    html_page(
        StatusCode::OK,
        format!(
            "<p>The gateway is signed in to {}.</p>\
             <p><a href=\"/ui/upstreams\">Back to the console's upstreams</a></p>",
            escape(upstream)
        ),
    )
}

/// A short page for the browser that came back.
pub(super) fn page(status: StatusCode, text: &str) -> Response {
    html_page(status, format!("<p>{}</p>", escape(text)))
}

/// A sign-in page around `body`, which is HTML already.
fn html_page(status: StatusCode, body: String) -> Response {
    let html =
        format!("<!doctype html><meta charset=utf-8><title>MCPS.ONE sign-in</title>{body}\n");
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}
