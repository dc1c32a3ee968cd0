//! MCP over WebSocket at `/ws` and `/ws/mcp` (and `/ws/{virtual server}`): the upgrade
//! handshake, then one session-era MCP session per connection on [`WebSocketTransport`],
//! whose plain `tools/call`s go the gateway's own way (`message_calls`).
//!
//! Host and Origin were checked before the upgrade, like every HTTP request (a browser page
//! on another site must not reach a local gateway through a WebSocket either). The client
//! may offer subprotocols; when it does, one of them must be `mcp`, which we select.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use rmcp::ServiceExt;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{http::RequestBody, message_calls::MessageCalls, sessions::Seat};
use crate::{
    gateway::{Gateway, GatewayServer, SessionFacts},
    outbound::Outbound,
    security::{Lease, Principal},
    websocket::{ClientBounds, Ending, SUBPROTOCOL, WebSocketTransport, config},
};

/// Where WebSocket sessions run and end.
pub struct WebSocketSessions {
    pub gateway: Arc<Gateway>,
    pub max_message_bytes: usize,
    pub max_outbound_bytes: usize,
    pub write_stall: std::time::Duration,
    /// A session with no frame from its client for this long is closed.
    pub idle: std::time::Duration,
    pub max_json_depth: usize,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

/// Why an upgrade was refused: the status and what to tell the client.
pub struct Refusal(pub StatusCode, pub String);

impl WebSocketSessions {
    /// Answers the upgrade request with `101 Switching Protocols` and starts the session on
    /// the upgraded connection, or says why not. The session holds `seat` while it lasts, and
    /// ends (close code 1008, policy violation) when `lease`, its credential's, does.
    pub fn upgrade(
        &self,
        mut request: Request<RequestBody>,
        seat: Seat,
        lease: Option<Lease>,
        scope: Option<Arc<str>>,
    ) -> Result<Response<()>, Refusal> {
        // Who opened the session: its requests are theirs (the call log, per-user upstreams).
        let principal = request
            .extensions()
            .get::<Principal>()
            .map(Principal::identity);
        let headers = request.headers();
        let key = handshake_key(headers)?;
        let subprotocol = choose_subprotocol(headers)?;
        let upgrade = hyper::upgrade::on(&mut request);
        let gateway = self.gateway.clone();
        let limit = config(self.max_message_bytes);
        let mut bounds = ClientBounds {
            outbound: Outbound::new(self.max_outbound_bytes, self.write_stall),
            idle: self.idle,
            max_depth: self.max_json_depth,
            ends: lease
                .clone()
                .map(|lease| Box::pin(async move { lease.ended().await.to_string() }) as Ending),
            own_way: None,
        };
        let shutdown = self.shutdown.child_token();
        // The session's plain calls go the gateway's own way (see `message_calls`).
        let facts: Arc<OnceLock<Arc<SessionFacts>>> = Arc::default();
        let (own_way, messages) = MessageCalls::new(
            gateway.clone(),
            facts.clone(),
            scope.clone(),
            shutdown.child_token(),
        );
        let own_way = own_way.opened_by(principal.clone(), lease.clone());
        bounds.own_way = Some((Arc::new(own_way), messages));
        self.tracker.spawn(async move {
            let _seat = seat;
            let upgraded = match upgrade.await {
                Ok(upgraded) => upgraded,
                Err(error) => return tracing::debug!(%error, "WebSocket upgrade failed"),
            };
            let socket =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(limit))
                    .await;
            let transport = WebSocketTransport::serving(socket, bounds);
            match GatewayServer::new(gateway)
                .scoped(scope)
                .leased(lease, principal)
                .publishing_facts(facts)
                .into_service()
                .serve_with_ct(transport, shutdown)
                .await
            {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(error) => tracing::debug!(%error, "WebSocket session ended before it started"),
            }
        });
        let mut response = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(
                header::SEC_WEBSOCKET_ACCEPT,
                derive_accept_key(key.as_bytes()),
            );
        if let Some(subprotocol) = subprotocol {
            response = response.header(header::SEC_WEBSOCKET_PROTOCOL, subprotocol);
        }
        Ok(response.body(()).expect("static headers are valid"))
    }
}

fn has_token(value: Option<&HeaderValue>, token: &str) -> bool {
    value
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
}

/// The client's `Sec-WebSocket-Key`, after checking that this is a WebSocket upgrade at all.
fn handshake_key(headers: &HeaderMap) -> Result<String, Refusal> {
    if !has_token(headers.get(header::UPGRADE), "websocket")
        || !has_token(headers.get(header::CONNECTION), "upgrade")
    {
        return Err(Refusal(
            StatusCode::UPGRADE_REQUIRED,
            "this is a WebSocket endpoint: send a WebSocket upgrade (subprotocol mcp)".into(),
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err(Refusal(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Version must be 13".into(),
        ));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|key| key.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            Refusal(
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key is missing".into(),
            )
        })
}

/// `mcp` if the client offered subprotocols (it must be among them), none if it offered none.
fn choose_subprotocol(headers: &HeaderMap) -> Result<Option<&'static str>, Refusal> {
    let offered: Vec<&HeaderValue> = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .collect();
    if offered.is_empty() {
        return Ok(None);
    }
    if offered
        .iter()
        .any(|value| has_token(Some(value), SUBPROTOCOL))
    {
        Ok(Some(SUBPROTOCOL))
    } else {
        Err(Refusal(
            StatusCode::BAD_REQUEST,
            format!("unsupported WebSocket subprotocol: this endpoint speaks {SUBPROTOCOL:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn subprotocol_is_mcp_when_offered_and_refused_when_only_others_are() {
        assert_eq!(choose_subprotocol(&headers(&[])).ok(), Some(None));
        let offered = headers(&[("sec-websocket-protocol", "graphql-ws, mcp")]);
        assert_eq!(choose_subprotocol(&offered).ok(), Some(Some("mcp")));
        let other = headers(&[("sec-websocket-protocol", "graphql-ws")]);
        assert!(choose_subprotocol(&other).is_err());
    }

    #[test]
    fn a_plain_get_is_told_to_upgrade() {
        let refusal = handshake_key(&headers(&[])).err().unwrap();
        assert_eq!(refusal.0, StatusCode::UPGRADE_REQUIRED);
        let old = headers(&[
            ("upgrade", "websocket"),
            ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-version", "8"),
        ]);
        assert_eq!(
            handshake_key(&old).err().unwrap().0,
            StatusCode::BAD_REQUEST
        );
    }
}
