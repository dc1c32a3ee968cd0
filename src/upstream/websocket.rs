//! A WebSocket upstream (`ws://`, `wss://`): one JSON-RPC message per text frame, subprotocol
//! `mcp` (see [`crate::websocket`]).

use std::sync::Arc;

use http::HeaderValue;
use hyper_rustls::ConfigBuilderExt;
use indexmap::IndexMap;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    Connector, MaybeTlsStream, connect_async_tls_with_config,
    tungstenite::{Error, client::IntoClientRequest},
};

use super::{connect::ConnectError, http::header_map};
use crate::websocket::{SUBPROTOCOL, WebSocketTransport, config};

pub type WsTransport = WebSocketTransport<rmcp::RoleClient, MaybeTlsStream<TcpStream>>;

/// Opens the connection, offering the `mcp` subprotocol and sending `headers` with the
/// upgrade. Errors name a header but never its value (it is usually a secret).
pub async fn connect(
    url: &str,
    headers: &IndexMap<String, String>,
    max_message_bytes: usize,
) -> Result<WsTransport, ConnectError> {
    let mut request = url
        .into_client_request()
        .map_err(|error| format!("invalid WebSocket URL: {error}"))?;
    let sent = request.headers_mut();
    sent.extend(header_map(headers)?);
    sent.insert(
        "sec-websocket-protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (socket, response) = match connect_async_tls_with_config(
        request,
        Some(config(max_message_bytes)),
        true,
        Some(tls()?),
    )
    .await
    {
        Ok(connected) => connected,
        Err(Error::Http(refusal)) => {
            let status = refusal.status().as_u16();
            // tungstenite follows no redirect (RFC 6455 leaves it to the client): say where
            // it pointed.
            let redirect = refusal
                .headers()
                .get(http::header::LOCATION)
                .and_then(|location| location.to_str().ok())
                .filter(|_| refusal.status().is_redirection())
                .map(|location| {
                    format!(", redirecting to {location:?}: configure its url as that, if it is the server you meant")
                })
                .unwrap_or_default();
            return Err(ConnectError::answered(
                format!("WebSocket connection failed: the server answered {status}{redirect}"),
                status,
                refusal.headers(),
            ));
        }
        Err(error) => return Err(format!("WebSocket connection failed: {error}").into()),
    };
    if let Some(chosen) = response.headers().get("sec-websocket-protocol")
        && chosen != SUBPROTOCOL
    {
        return Err(format!("the server chose the subprotocol {chosen:?}, not mcp").into());
    }
    Ok(WebSocketTransport::client(socket))
}

/// TLS for `wss://`, verified as the gateway's HTTPS upstreams are (`http_lane/wire.rs`,
/// reqwest): by the platform's verifier, with the authorities the system trusts (a team's
/// own among them, or those of `SSL_CERT_FILE`), not only the public ones. Our ring provider.
fn tls() -> Result<Connector, String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|builder| builder.try_with_platform_verifier())
    .map_err(|error| format!("cannot set up TLS: {error}"))?
    .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}
