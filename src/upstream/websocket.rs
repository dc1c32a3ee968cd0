//! A WebSocket upstream (`ws://`, `wss://`): one JSON-RPC message per text frame, subprotocol
//! `mcp` (see [`crate::websocket`]). When the system's proxy settings name a proxy for the
//! upstream's URL (`HTTP_PROXY` for `ws://`, `HTTPS_PROXY` for `wss://`, less `NO_PROXY`), the
//! connection goes through it: its `CONNECT` tunnel (in TLS to an `https://` proxy), or a
//! SOCKS proxy's connection.

use std::sync::Arc;

use http::{HeaderValue, Response, Uri, header};
use hyper_util::rt::TokioIo;
use indexmap::IndexMap;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    Connector, MaybeTlsStream, WebSocketStream, client_async_tls_with_config,
    tungstenite::{Error, client::IntoClientRequest},
};
use tokio_util::either::Either;
use tower_service::Service;
use url::Url;

use super::{
    connect::ConnectError,
    http::header_map,
    http_lane::{HopIo, proxy_connector},
    redirects,
};
use crate::{
    error::with_causes,
    websocket::{SUBPROTOCOL, WebSocketTransport, config},
};

/// What a WebSocket upstream's connection runs on: TCP, straight or through a proxy that
/// carries it plainly; or the connection through a proxy spoken to in TLS.
type Stream = Either<TcpStream, TokioIo<HopIo>>;

pub type WsTransport = WebSocketTransport<rmcp::RoleClient, MaybeTlsStream<Stream>>;

type Socket = WebSocketStream<MaybeTlsStream<Stream>>;

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
    let stream = match through_proxy(target).await? {
        Some(tunnel) => tunnel,
        None => Either::Left(straight(target).await?),
    };
    let connected = client_async_tls_with_config(request, stream, config, Some(tls()?)).await;
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

/// A TCP connection straight to `target`'s host and port, without Nagle (as tungstenite's
/// own connect makes it, and the HTTP lane's).
async fn straight(target: &Url) -> Result<TcpStream, ConnectError> {
    let (Some(host), Some(port)) = (target.host_str(), target.port_or_known_default()) else {
        return Err("invalid WebSocket URL: it names no host".to_owned().into());
    };
    // An IPv6 host comes in brackets, which the lookup takes.
    let failed = |error: std::io::Error| format!("WebSocket connection failed: IO error: {error}");
    let tcp = TcpStream::connect(format!("{host}:{port}"))
        .await
        .map_err(failed)?;
    tcp.set_nodelay(true).map_err(failed)?;
    Ok(tcp)
}

/// A connection to `target` through the proxy the system's settings name for it, if they name
/// one (a `CONNECT` tunnel, or a SOCKS proxy's; see `http_lane/route.rs`); TLS, for `wss://`,
/// is the upgrade's to add.
async fn through_proxy(target: &Url) -> Result<Option<Stream>, ConnectError> {
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
    let cannot =
        |why: String| format!("WebSocket connection failed: cannot go through the proxy: {why}");
    let Some(mut hop) = proxy_connector(&as_http).map_err(cannot)? else {
        return Ok(None);
    };
    let io = hop
        .call(as_http)
        .await
        .map_err(|error| cannot(with_causes(&*error)))?;
    Ok(Some(match io {
        // Plain TCP to the proxy: the socket itself, as a straight connection has it.
        hyper_rustls::MaybeHttpsStream::Http(tcp) => Either::Left(tcp.into_inner()),
        in_tls => Either::Right(TokioIo::new(in_tls)),
    }))
}

/// TLS for `wss://`, as for the gateway's HTTPS upstreams (`upstream/tls.rs`).
fn tls() -> Result<Connector, String> {
    Ok(Connector::Rustls(Arc::new(super::tls::client_config()?)))
}
