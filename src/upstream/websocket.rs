//! A WebSocket upstream (`ws://`, `wss://`): one JSON-RPC message per text frame, subprotocol
//! `mcp` (see [`crate::websocket`]). When the system's proxy settings name a proxy for the
//! upstream's URL (`HTTP_PROXY` for `ws://`, `HTTPS_PROXY` for `wss://`, less `NO_PROXY`), the
//! connection goes through its `CONNECT` tunnel.

use std::sync::Arc;

use http::{HeaderValue, Response, Uri, header};
use indexmap::IndexMap;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    Connector, MaybeTlsStream, WebSocketStream, client_async_tls_with_config,
    connect_async_tls_with_config,
    tungstenite::{Error, client::IntoClientRequest},
};
use tower_service::Service;
use url::Url;

use super::{connect::ConnectError, http::header_map, http_lane::proxy_connector, redirects};
use crate::{
    error::with_causes,
    websocket::{SUBPROTOCOL, WebSocketTransport, config},
};

pub type WsTransport = WebSocketTransport<rmcp::RoleClient, MaybeTlsStream<TcpStream>>;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the connection, offering the `mcp` subprotocol and sending `headers` with the
/// upgrade, following the redirects `upstream`'s server answers within its origin (see
/// [`redirects::upgrade_target`]). Errors name a header but never its value (it is usually a
/// secret).
pub async fn connect(
    upstream: &str,
    url: &str,
    headers: &IndexMap<String, String>,
    max_message_bytes: usize,
) -> Result<WsTransport, ConnectError> {
    let mut target = Url::parse(url).map_err(|error| format!("invalid WebSocket URL: {error}"))?;
    let mut followed = 0;
    loop {
        let refusal = match upgrade(&target, headers, max_message_bytes).await? {
            Ok(socket) => return Ok(WebSocketTransport::client(socket)),
            Err(refusal) => refusal,
        };
        let status = refusal.status();
        let failed = |why: String| {
            ConnectError::answered(
                format!("WebSocket connection failed: {why}"),
                status.as_u16(),
                refusal.headers(),
            )
        };
        let Some(location) = refusal
            .headers()
            .get(header::LOCATION)
            .and_then(|location| location.to_str().ok())
            .filter(|_| redirects::is_redirect(status))
        else {
            return Err(failed(format!("the server answered {}", status.as_u16())));
        };
        let to = redirects::upgrade_target(&target, location, followed).map_err(failed)?;
        if followed == 0 {
            redirects::followed(upstream, "connection", status, &target, &to);
        }
        target = to;
        followed += 1;
    }
}

/// One upgrade sent to `target`: the socket, or the server's answer when it is not a switch
/// to the `mcp` subprotocol's WebSocket.
async fn upgrade(
    target: &Url,
    headers: &IndexMap<String, String>,
    max_message_bytes: usize,
) -> Result<Result<Socket, Response<Option<Vec<u8>>>>, ConnectError> {
    let mut request = target
        .as_str()
        .into_client_request()
        .map_err(|error| format!("invalid WebSocket URL: {error}"))?;
    let sent = request.headers_mut();
    sent.extend(header_map(headers)?);
    sent.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let config = Some(config(max_message_bytes));
    let connected = match through_proxy(target).await? {
        Some(tunnel) => client_async_tls_with_config(request, tunnel, config, Some(tls()?)).await,
        None => connect_async_tls_with_config(request, config, true, Some(tls()?)).await,
    };
    let (socket, response) = match connected {
        Ok(connected) => connected,
        Err(Error::Http(refusal)) => return Ok(Err(*refusal)),
        Err(error) => return Err(format!("WebSocket connection failed: {error}").into()),
    };
    if let Some(chosen) = response.headers().get("sec-websocket-protocol")
        && chosen != SUBPROTOCOL
    {
        return Err(format!("the server chose the subprotocol {chosen:?}, not mcp").into());
    }
    Ok(Ok(socket))
}

/// A connection to `target` through the proxy the system's settings name for it, if they name
/// one (a `CONNECT` tunnel, or a SOCKS proxy's; see `http_lane/route.rs`); TLS, for `wss://`,
/// is the upgrade's to add.
async fn through_proxy(target: &Url) -> Result<Option<TcpStream>, ConnectError> {
    // The proxy settings speak of http and https; the tunnel needs the port said. An IPv6
    // host comes in brackets.
    let scheme = if target.scheme() == "wss" {
        "https"
    } else {
        "http"
    };
    let (Some(host), Some(port)) = (target.host_str(), target.port_or_known_default()) else {
        return Ok(None);
    };
    let Ok(as_http) = format!("{scheme}://{host}:{port}/").parse::<Uri>() else {
        return Ok(None);
    };
    let Some(mut proxied) = proxy_connector(&as_http) else {
        return Ok(None);
    };
    let io = proxied.call(as_http).await.map_err(|error| {
        format!(
            "WebSocket connection failed: cannot go through the proxy: {}",
            with_causes(&*error)
        )
    })?;
    Ok(Some(io.into_inner()))
}

/// TLS for `wss://`, as for the gateway's HTTPS upstreams (`upstream/tls.rs`).
fn tls() -> Result<Connector, String> {
    Ok(Connector::Rustls(Arc::new(super::tls::client_config()?)))
}
