//! `/api/v1/auth`: logging in, who am I, API keys; and the extractor every protected route
//! uses to know its caller.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AdminState,
    error::{ApiError, Body, ErrorBody},
};
use crate::{
    registry::{StoredToken, TokenKind, now_ms},
    security::{
        IdentityProvider, Principal, TokenCache, TokenEntry, api_key_principal, bearer,
        identity::Refusal,
    },
};

/// The authenticated caller of a protected route: a valid `Authorization: Bearer` token
/// (a login token or an API key), else 401.
pub struct Caller(pub Principal);

impl FromRequestParts<Arc<AdminState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "this endpoint needs `Authorization: Bearer <token>`: log in at POST /api/v1/auth/login, or use an API key",
            ));
        };
        let caller = match state.tokens.verify_anywhere(token, now_ms()).await {
            Some((caller, _)) => caller,
            None => return identity_provider_user(state, parts, token).await,
        };
        if let Some(server) = &caller.virtual_server
            && !OPEN_TO_BOUND_KEYS
                .iter()
                .any(|(method, path)| parts.method == *method && parts.uri.path() == *path)
        {
            return Err(ApiError::forbidden(format!(
                "this key is bound to virtual server {server:?}: it may use /mcp, /ws, /api/v1/tools, /api/v1/tools/call, /api/v1/mcp/proxy and /api/v1/auth/me only"
            )));
        }
        Ok(Caller(caller))
    }
}

/// A user of the identity provider (`auth.oauth`), whose JWT access token the request carries:
/// they may use what a bound key may (the tools, and who they are). The rest (keys, logins,
/// services) belongs to users of the registry.
async fn identity_provider_user(
    state: &AdminState,
    parts: &Parts,
    token: &str,
) -> Result<Caller, ApiError> {
    let unknown = || ApiError::unauthorized("the token is unknown, expired or revoked");
    let Some(identity) = state
        .identity
        .as_ref()
        .filter(|_| IdentityProvider::is_jwt(token))
    else {
        return Err(unknown());
    };
    let (caller, _lease) = identity
        .verify(token)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Unauthorized(Some(why)) => ApiError::unauthorized(why),
            Refusal::Unauthorized(None) => unknown(),
            Refusal::InsufficientScope => ApiError::forbidden(refusal.to_string()),
        })?;
    let open = OPEN_TO_BOUND_KEYS
        .iter()
        .any(|(method, path)| parts.method == *method && parts.uri.path() == *path);
    if !open {
        return Err(ApiError::forbidden(
            "users of the identity provider may use /api/v1/tools, /api/v1/tools/call, /api/v1/mcp/proxy and /api/v1/auth/me only",
        ));
    }
    Ok(Caller(caller))
}

/// What a key bound to a virtual server may use of the API: its own tools, and who it is.
/// The rest (services, keys, history, reload) would reach past its virtual server.
const OPEN_TO_BOUND_KEYS: &[(http::Method, &str)] = &[
    (http::Method::GET, "/api/v1/tools"),
    (http::Method::POST, "/api/v1/tools/call"),
    (http::Method::POST, "/api/v1/mcp/proxy"),
    (http::Method::GET, "/api/v1/auth/me"),
];

pub(super) fn routes() -> OpenApiRouter<Arc<AdminState>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

/// Accepts `token` (stored in the registry) from now on.
pub(super) fn accept(tokens: &TokenCache, token: &StoredToken) {
    let (hash, entry) = entry_of(token);
    tokens.insert(hash, entry);
}

/// What the token cache holds of `token`.
pub(super) fn entry_of(token: &StoredToken) -> ([u8; 32], TokenEntry) {
    let entry = TokenEntry {
        principal: Principal {
            user_id: token.user_id,
            username: token.username.clone(),
            is_admin: token.is_admin,
            token_id: token.id,
            key_name: (token.kind == TokenKind::ApiKey).then(|| token.name.clone()),
            virtual_server: token.virtual_server.clone(),
        },
        expires_at: token.expires_at,
    };
    (token.secret_hash, entry)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct LoginToken {
    /// Send it as `Authorization: Bearer <token>`.
    token: String,
    token_type: &'static str,
    /// Milliseconds since the Unix epoch.
    expires_at: i64,
}

/// Logs in with a username and password and returns a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, body = LoginToken, description = "OK"),
        (status = 400, body = ErrorBody, description = "Not JSON, or not {username, password}"),
        (status = 401, body = ErrorBody, description = "Wrong username or password"),
        (status = 429, body = ErrorBody, description = "Too many wrong passwords for this user or from this address (see Retry-After), or too many logins at once"),
    ))]
async fn login(
    State(state): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Body(credentials): Body<Credentials>,
) -> Result<Json<LoginToken>, ApiError> {
    let (token, expires_at) =
        log_in(&state, &credentials.username, &credentials.password, peer).await?;
    Ok(Json(LoginToken {
        token,
        token_type: "Bearer",
        expires_at,
    }))
}

/// Checks a user's password, under the brake on guessing, and makes a login token: its
/// secret, and when it expires (milliseconds since the Unix epoch). The API's login and the
/// console's both come here.
pub(super) async fn log_in(
    state: &AdminState,
    username: &str,
    password: &str,
    peer: SocketAddr,
) -> Result<(String, i64), ApiError> {
    let address = peer.ip();
    let throttle = &state.login_throttle;
    let lock_if_wrong = throttle
        .attempt(username, address, Instant::now())
        .map_err(|throttled| {
            ApiError::too_many_requests(throttled.to_string(), throttled.retry_after())
        })?;
    let checked = state.registry.check_password(username, password).await?;
    let Some(user) = checked else {
        // Debug-quoted: the name is the client's, and may hold anything.
        let shown = username.chars().take(64).collect::<String>();
        match lock_if_wrong {
            Some(lock) => tracing::warn!(user = ?shown, %address, "wrong password; {lock}"),
            None => tracing::info!(user = ?shown, %address, "wrong password"),
        }
        return Err(ApiError::unauthorized("wrong username or password"));
    };
    throttle.succeeded(username, address, Instant::now());
    let ttl_ms =
        i64::try_from(state.config.auth.token_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires_at = now_ms().saturating_add(ttl_ms);
    let (token, secret) = state
        .registry
        .create_token(user.id, TokenKind::Login, "login", Some(expires_at), None)
        .await?;
    accept(&state.tokens, &token);
    tracing::info!(user = %user.username, "logged in");
    Ok((secret, expires_at))
}

/// Ends the login token of `caller` (not an API key's).
pub(super) async fn log_out(state: &AdminState, caller: &Principal) -> Result<(), ApiError> {
    state
        .registry
        .revoke_token(caller.token_id, TokenKind::Login, caller.user_id)
        .await?;
    state.tokens.revoke(caller.token_id);
    Ok(())
}

/// Ends the login token the request carries (an API key is revoked under /auth/keys).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "The token no longer works"),
        (status = 400, body = ErrorBody, description = "The token is an API key"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
    ),
    security(("bearer" = [])))]
async fn logout(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
) -> Result<StatusCode, ApiError> {
    if caller.key_name.is_some() {
        return Err(ApiError::bad_request(
            "this is an API key: revoke it with DELETE /api/v1/auth/keys/{id}",
        ));
    }
    log_out(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct Me {
    username: String,
    is_admin: bool,
    /// `login`, `api_key` or `identity_provider` (an `auth.oauth` access token): what the
    /// request authenticated with.
    authenticated_with: &'static str,
    /// The API key's name, when it was one.
    key_name: Option<String>,
}

/// Who the bearer token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = Me, description = "OK"), (status = 401, body = ErrorBody, description = "No valid bearer token")),
    security(("bearer" = [])))]
async fn me(Caller(caller): Caller) -> Json<Me> {
    Json(Me {
        username: caller.username,
        is_admin: caller.is_admin,
        authenticated_with: if caller.key_name.is_some() {
            "api_key"
        } else if caller.user_id < 0 {
            "identity_provider"
        } else {
            "login"
        },
        key_name: caller.key_name,
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    /// What the key is for, e.g. `claude-desktop`.
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    name: String,
    /// A virtual server (`virtual_servers` in proxy.yaml) the key is bound to: it sees and
    /// calls only that server's tools, on `/mcp`, `/mcp/{name}`, `/ws` and the tools API,
    /// and can use no other part of the API but `/auth/me`.
    #[serde(default)]
    virtual_server: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ApiKey {
    id: i64,
    name: String,
    /// The first characters of the key, to tell keys apart.
    hint: String,
    created_at: i64,
    revoked_at: Option<i64>,
    /// The virtual server the key is bound to, if any.
    virtual_server: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CreatedKey {
    #[serde(flatten)]
    info: ApiKey,
    /// The key itself. It is shown this once and stored only as a hash.
    key: String,
}

impl From<StoredToken> for ApiKey {
    fn from(token: StoredToken) -> Self {
        Self {
            id: token.id,
            name: token.name,
            hint: token.hint,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
            virtual_server: token.virtual_server,
        }
    }
}

/// The caller's API keys, revoked ones included, newest first.
#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "auth",
    responses((status = 200, body = Vec<ApiKey>, description = "OK"), (status = 401, body = ErrorBody, description = "No valid bearer token")),
    security(("bearer" = [])))]
async fn list_keys(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ApiKey>>, ApiError> {
    let keys = state.registry.api_keys(caller.user_id).await?;
    Ok(Json(keys.into_iter().map(ApiKey::from).collect()))
}

/// Creates an API key for the caller. The key is in this answer only.
#[utoipa::path(post, path = "/api/v1/auth/keys", tag = "auth",
    request_body = NewKey,
    responses(
        (status = 201, body = CreatedKey, description = "Created"),
        (status = 400, body = ErrorBody, description = "Bad request"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
    ),
    security(("bearer" = [])))]
async fn create_key(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
    Body(request): Body<NewKey>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let (token, secret) = make_key(
        &state,
        &caller,
        &request.name,
        request.virtual_server.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            info: token.into(),
            key: secret,
        }),
    ))
}

/// Makes an API key named `name` for `caller`, bound to `virtual_server` if given: the
/// stored key, and the key itself (which is not stored).
pub(super) async fn make_key(
    state: &AdminState,
    caller: &Principal,
    name: &str,
    virtual_server: Option<&str>,
) -> Result<(StoredToken, String), ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("`name` must be 1 to 100 characters"));
    }
    if let Some(server) = virtual_server
        && state.gateway.view(server).is_none()
    {
        return Err(ApiError::bad_request(format!(
            "no virtual server named {server:?} in the configuration"
        )));
    }
    if caller.virtual_server.is_some() {
        return Err(ApiError::forbidden(
            "a key bound to a virtual server cannot make keys",
        ));
    }
    let (token, secret) = state
        .registry
        .create_token(
            caller.user_id,
            TokenKind::ApiKey,
            name,
            None,
            virtual_server,
        )
        .await?;
    accept(&state.tokens, &token);
    tracing::info!(user = %caller.username, key = %token.name, "API key created");
    Ok((token, secret))
}

/// Revokes one of the caller's API keys; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", tag = "auth",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody, description = "No valid bearer token"),
        (status = 404, body = ErrorBody, description = "No such key of the caller's"),
    ),
    security(("bearer" = [])))]
async fn revoke_key(
    State(state): State<Arc<AdminState>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no API key {id:?}")))?;
    revoke_key_of(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes `caller`'s API key `id`, and its sign-ins to per-user upstreams.
pub(super) async fn revoke_key_of(
    state: &AdminState,
    caller: &Principal,
    id: i64,
) -> Result<(), ApiError> {
    let token = state
        .registry
        .revoke_token(id, TokenKind::ApiKey, caller.user_id)
        .await?;
    state.tokens.revoke(id);
    tracing::info!(user = %caller.username, key = %token.name, "API key revoked");
    // Its sign-ins to per-user upstreams go with it.
    state.gateway.forget_principal(&api_key_principal(id)).await;
    Ok(())
}
