//! The HTTP front door: one hyper server for `/mcp` (rmcp's streamable HTTP service, both
//! protocol eras), `/ws`, and the REST surface (`/api/v1`, `/openapi.json`, `/docs`,
//! `/redoc`), which is an axum router handed in by the app.
//!
//! With `auth.enabled` or `auth.oauth`, `/mcp` and `/ws` need a bearer token (see `gate`); the
//! caller it names, and the lease that ends what it opens when the token ends, travel in the
//! request's extensions. The header itself is never passed on: rmcp's upstream clients build
//! their own requests. A request that opens a session takes its seat here first (see
//! [`super::sessions`]).
//!
//! Before rmcp sees a request we (1) validate `Host` and `Origin` (403), here; in [`mcp`],
//! (2) refuse a body over `limits.max_body_bytes` (413), by `Content-Length` before reading
//! and by counting while reading otherwise, and afterwards (3) turn rmcp's plain-text answer
//! to an unparsable body into a JSON-RPC `-32700` / `-32600` error, which is what clients can
//! act on.
//!
//! Connections are accepted in [`super::listener`].

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use rmcp::{
    ErrorData,
    transport::{StreamableHttpServerConfig, StreamableHttpService},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

mod answers;
mod body;
mod fast;
mod gate;
mod in_session;
mod mcp;
mod param_headers;
mod session_call;
mod ticks;

use answers::{api_error, json_response, jsonrpc_error_response, scope_refused, unavailable};
use session_call::SessionCalls;

use super::{
    connection::Deadlines,
    endpoint::{self, Endpoint},
    listener::ConnectionLimits,
    sessions::{self, Holder, Seat, SessionBook, SessionLimits},
    websocket::{Refusal, WebSocketSessions},
};
use crate::{
    config::Config,
    gateway::{Gateway, GatewayServer, Scope},
    mcp_headers,
    registry::{Changes, Registry, now_ms},
    security::{
        IdentityProvider, Lease, OriginPolicy, Principal, TokenCache, bearer, client_network,
    },
};

/// Every response body we produce.
pub type Body = axum::body::Body;

/// Every request body we read: bounded in time (see [`super::connection`]).
pub type RequestBody = super::connection::TimedBody;

/// Marks an answer that, if it is an event stream, streams for as long as its client
/// listens: a session-era GET's, or a 2026-07-28 `subscriptions/listen`'s. Over HTTP/1.1 the
/// connection writes it itself, without hyper's buffers (`listener/handover.rs`).
#[derive(Debug, Clone, Copy)]
pub struct StreamsWhileListened {
    /// The request asked for its connection to close after its answer.
    pub closes: bool,
}

/// Whether `headers` say the connection closes after their message.
pub fn asks_to_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
}

/// Routes and guards HTTP requests.
pub struct HttpFront {
    mcp: StreamableHttpService<GatewayServer, SessionBook>,
    websocket: WebSocketSessions,
    policy: OriginPolicy,
    /// The REST surface.
    admin: Router,
    /// Set when `/mcp` and `/ws` need a bearer token.
    required_tokens: Option<Arc<TokenCache>>,
    /// With `auth.oauth`: the identity provider whose access tokens `/mcp` and `/ws` take
    /// beside API keys.
    identity: Option<Arc<IdentityProvider>>,
    max_body_bytes: usize,
    max_json_depth: usize,
    /// Connections: how many, from where, for how long (see [`super::listener`]).
    pub(super) connection_limits: ConnectionLimits,
    /// Every accepted token, also without auth: the reserve of connections is for them.
    tokens: Arc<TokenCache>,
    /// Also the TCP user timeout of every connection (see [`super::listener`]).
    pub(super) write_stall: Duration,
    gateway: Arc<Gateway>,
    /// The client sessions: how many, whose, how long.
    sessions: Arc<SessionBook>,
    /// Session-era calls served without rmcp (see [`session_call`]).
    session_calls: SessionCalls,
}

/// Where the front door's state lives beyond it.
pub struct Kept<'a> {
    /// Every token accepted, and how to look for one unknown here.
    pub tokens: Arc<TokenCache>,
    /// The registry the client sessions are kept in for the other gateways on it, and its
    /// changes.
    pub sessions_in: Option<(Registry, &'a Changes)>,
}

impl HttpFront {
    pub fn new(
        gateway: Arc<Gateway>,
        config: &Config,
        listen: SocketAddr,
        admin: Router,
        kept: Kept<'_>,
        sessions_end: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let max_body_bytes = config.limits.max_body_bytes;
        let mut mcp_config = StreamableHttpServerConfig::default()
            .with_cancellation_token(sessions_end.child_token())
            .with_max_request_body_bytes(max_body_bytes)
            // A 2026-07-28 request whose first message is its answer gets it as plain JSON: no
            // event stream to set up and parse. rmcp falls back to SSE when progress, a log
            // message or an `input_required` round trip comes first. Session-era requests are
            // not affected.
            .with_json_response(true)
            // Host and Origin are checked by `OriginPolicy` before rmcp sees the request.
            .disable_allowed_hosts()
            .disable_allowed_origins();
        let for_sessions = gateway.clone();
        let limits = &config.limits;
        let sessions = SessionBook::new(
            SessionLimits {
                max: limits.max_sessions,
                per_principal: limits.max_sessions_per_principal,
                per_peer: limits.max_sessions_per_peer,
                unused_idle: config.timeouts.unused_session_idle(),
                // A session nobody has used for this long is closed (its id then gets 404).
                idle: config.timeouts.session_idle(),
                sleep: config.timeouts.session_sleep(),
                copy_idle: config.timeouts.session_copy_idle(),
            },
            Some(gateway.clone()),
            kept.sessions_in.clone(),
            tracker,
            sessions_end,
        );
        let session_calls = match kept.sessions_in {
            Some((registry, changes)) => SessionCalls::passing_answers(
                registry,
                changes,
                &sessions,
                tracker,
                sessions_end.clone(),
            ),
            None => SessionCalls::default(),
        };
        // A sleeping session is restored from the book (see `sessions::sleep`).
        mcp_config.session_store = Some(sessions.clone());
        let mcp = StreamableHttpService::new(
            move || Ok(GatewayServer::new(for_sessions.clone())),
            sessions.clone(),
            mcp_config,
        );
        let websocket = WebSocketSessions {
            gateway: gateway.clone(),
            max_message_bytes: max_body_bytes,
            max_outbound_bytes: config.limits.max_outbound_bytes,
            write_stall: config.timeouts.client_write_stall(),
            idle: config.timeouts.session_idle(),
            max_json_depth: config.limits.max_json_depth,
            shutdown: sessions_end.clone(),
            tracker: tracker.clone(),
        };
        // The gateway's public name is one of its own: browsers come back to it from sign-ins.
        let mut allowed_hosts = config.server.allowed_hosts.clone();
        let mut allowed_origins = config.server.allowed_origins.clone();
        if let Some(public) = config
            .server
            .public_url
            .as_deref()
            .and_then(|url| url::Url::parse(url).ok())
        {
            allowed_hosts.extend(public.host_str().map(str::to_owned));
            allowed_origins.push(public.origin().ascii_serialization());
        }
        Self {
            mcp,
            websocket,
            policy: OriginPolicy::new(listen, &allowed_hosts, &allowed_origins),
            admin,
            required_tokens: (config.auth.enabled || config.auth.oauth.is_some())
                .then(|| kept.tokens.clone()),
            identity: None,
            max_body_bytes,
            max_json_depth: config.limits.max_json_depth,
            connection_limits: ConnectionLimits {
                max: limits.max_connections,
                per_peer: limits.max_connections_per_peer,
                reserved: limits.reserved_connections(),
                deadlines: Deadlines {
                    header_read: config.timeouts.header_read(),
                    body_read: config.timeouts.body_read(),
                    idle: config.timeouts.connection_idle(),
                },
            },
            tokens: kept.tokens,
            write_stall: config.timeouts.client_write_stall(),
            gateway,
            sessions,
            session_calls,
        }
    }

    /// Answers one request.
    ///
    /// A plain function returning an `async` block, here and in [`Self::mcp`]: an `async fn`
    /// keeps its arguments twice in its future (as given, and as moved into its body), and
    /// this future is moved into its box for every request.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn's future holds the request twice"
    )]
    pub fn handle(
        &self,
        mut request: Request<RequestBody>,
    ) -> impl Future<Output = Response<Body>> + Send + '_ {
        async move {
            if let Err(rejection) = self.policy.check(request.headers(), request.uri()) {
                tracing::warn!(%rejection, "request refused");
                return jsonrpc_error_response(
                    StatusCode::FORBIDDEN,
                    ErrorData::invalid_request(format!("Forbidden: {rejection}"), None),
                );
            }
            // A clone shares the bytes; `endpoint` borrows the path while the request changes.
            let uri = request.uri().clone();
            let endpoint = Endpoint::of(uri.path());
            let mcp = endpoint.is_some();
            // `/metrics` names tools and upstreams: it is guarded like the MCP endpoints.
            let guarded = mcp || uri.path() == "/metrics";
            if guarded && let Some(tokens) = &self.required_tokens {
                match self.caller(tokens, request.headers()).await {
                    Ok((principal, lease)) => {
                        request.extensions_mut().insert(principal);
                        request.extensions_mut().insert(lease);
                    }
                    Err(refusal) => return self.refused(&refusal),
                }
            }
            let scope = match endpoint {
                Some(endpoint) => {
                    let principal = request.extensions().get::<Principal>();
                    match endpoint::scope(&self.gateway, endpoint, principal) {
                        Ok(scope) => scope,
                        Err(refusal) => return scope_refused(&refusal),
                    }
                }
                None => None,
            };
            match endpoint {
                Some(Endpoint::Http(_)) => {
                    if let Some(scope) = scope {
                        request.extensions_mut().insert(Scope(scope));
                    }
                    let seat = if self.opens_session(&request) {
                        match self.take_seat(&request) {
                            Ok(seat) => Some(seat),
                            Err(refusal) => return unavailable(refusal.to_string()),
                        }
                    } else {
                        if let Err(refused) = self.continue_session(&request).await {
                            return refused;
                        }
                        None
                    };
                    self.mcp(request, seat).await
                }
                Some(Endpoint::WebSocket(_)) if request.method() == Method::GET => {
                    // Every WebSocket is a session.
                    let seat = match self.take_seat(&request) {
                        Ok(seat) => seat,
                        Err(refusal) => return unavailable(refusal.to_string()),
                    };
                    let lease = request.extensions().get::<Lease>().cloned();
                    match self.websocket.upgrade(request, seat, lease, scope) {
                        Ok(switching) => switching.map(|()| Body::empty()),
                        Err(Refusal(status, message)) => {
                            json_response(status, &api_error("websocket_upgrade", &message))
                        }
                    }
                }
                _ => self.not_mcp(request).await,
            }
        }
    }

    /// `/metrics`, the protected resource metadata, the REST surface, or 404 (saying how to
    /// sign in, to a client that looks for OAuth where the gateway takes API keys alone).
    async fn not_mcp(&self, request: Request<RequestBody>) -> Response<Body> {
        match request.uri().path() {
            "/metrics" if request.method() == Method::GET => self.metrics(),
            path if request.method() == Method::GET
                && self
                    .identity
                    .as_ref()
                    .is_some_and(|identity| identity.serves_metadata_at(path)) =>
            {
                let identity = self.identity.as_ref().expect("checked above");
                json_response(StatusCode::OK, &identity.metadata())
            }
            path if is_admin_path(path) => {
                let mut admin = self.admin.clone();
                match tower_service::Service::call(&mut admin, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
            path if self.required_tokens.is_some()
                && self.identity.is_none()
                && answers::is_oauth_path(path) =>
            {
                answers::no_oauth_sign_in()
            }
            path => json_response(
                StatusCode::NOT_FOUND,
                &api_error("not_found", &format!("no route for {path}")),
            ),
        }
    }

    /// The Prometheus metrics (with `auth.enabled`, [`HttpFront::handle`] has checked the
    /// bearer token).
    fn metrics(&self) -> Response<Body> {
        let text = crate::metrics::metrics().render(&self.gateway.state_gauges());
        let mut response = Response::new(Body::from(text));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
        );
        response
    }

    /// The answer to a request on a connection accepted into the reserve that may not use it
    /// (see [`super::listener`]); the connection closes after it.
    pub(super) fn too_many_connections(&self) -> Response<Body> {
        let mut response = unavailable(format!(
            "too many connections: the last {} of limits.max_connections ({}) are kept for health checks and requests with a valid credential",
            self.connection_limits.reserved, self.connection_limits.max
        ));
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        response
    }

    /// Whether `request` may be served on a connection in the reserve: a health check, or a
    /// request with a valid bearer token (a login token, an API key, or with `auth.oauth` an
    /// access token of the identity provider).
    pub(super) async fn may_use_reserve(&self, request: &Request<RequestBody>) -> bool {
        if request.uri().path() == "/api/v1/system/health" {
            return true;
        }
        let Some(token) = bearer(request.headers()) else {
            return false;
        };
        if self.tokens.verify_anywhere(token, now_ms()).await.is_some() {
            return true;
        }
        match &self.identity {
            Some(identity) if IdentityProvider::is_jwt(token) => {
                identity.verify(token).await.is_ok()
            }
            _ => false,
        }
    }

    /// A seat for the session `request` opens, counted against its credential (with auth) or
    /// its client's address (without), or the limit it would pass.
    fn take_seat(&self, request: &Request<RequestBody>) -> Result<Seat, sessions::Refusal> {
        let extensions = request.extensions();
        let principal = extensions.get::<Principal>();
        let holder = match principal {
            Some(principal) => Holder::Credential(principal.token_id),
            None => {
                let peer = extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |peer| peer.0.ip());
                Holder::Address(client_network(peer))
            }
        };
        let lease = extensions.get::<Lease>().cloned();
        self.sessions
            .reserve(holder, principal.map(|principal| principal.token_id), lease)
    }

    /// Whether a request to `/mcp` would open a client session: a POST with no session id
    /// that is not a 2026-07-28 request (those have no session).
    fn opens_session(&self, request: &Request<RequestBody>) -> bool {
        let headers = request.headers();
        request.method() == Method::POST
            && !headers.contains_key(mcp_headers::SESSION_ID)
            && headers
                .get(mcp_headers::PROTOCOL_VERSION)
                .and_then(|version| version.to_str().ok())
                .is_none_or(|version| version < "2026-07-28")
    }
}

impl HttpFront {
    /// The same, taking the access tokens of `identity` (`auth.oauth`) beside API keys.
    pub fn checking(mut self, identity: Option<Arc<IdentityProvider>>) -> Self {
        self.identity = identity;
        self
    }
}

/// Whether the REST surface answers `path`.
fn is_admin_path(path: &str) -> bool {
    path.starts_with("/api/")
        || path == crate::upstream::CALLBACK_PATH
        || path == crate::upstream::CLIENT_METADATA_PATH
        || path == crate::security::PROVIDER_CALLBACK_PATH
        || path
            .strip_prefix(crate::upstream::CONNECT_PATH)
            .is_some_and(|rest| rest.starts_with('/'))
        || path == "/openapi.json"
        || path == "/docs"
        || path.starts_with("/docs/")
        || path == "/redoc"
        || path.starts_with("/redoc/")
        || path == "/"
        || path == "/ui"
        || path.starts_with("/ui/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_header_saying_close_is_heard_in_any_case() {
        let mut headers = HeaderMap::new();
        assert!(!asks_to_close(&headers));
        headers.insert(header::CONNECTION, "keep-alive".parse().unwrap());
        assert!(!asks_to_close(&headers));
        headers.append(header::CONNECTION, "Close".parse().unwrap());
        assert!(asks_to_close(&headers));
    }
}
