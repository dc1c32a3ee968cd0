//! A raw MCP client over WebSocket: one JSON-RPC message per text frame, as the gateway
//! serves it at `/ws` and `/ws/{virtual server}`.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{
        Message, client::IntoClientRequest, handshake::client::Request, http::HeaderValue,
    },
};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A socket to `url`, asking for the `mcp` subprotocol and checking it was granted.
pub async fn open(url: &str) -> Socket {
    open_as(url, None).await.expect("WebSocket handshake")
}

/// The same with `Authorization: Bearer <token>` when there is one; the handshake's answer
/// when it is refused.
pub async fn open_as(
    url: &str,
    token: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let (socket, response) = connect_async(upgrade_request(url, token)).await?;
    assert_eq!(
        response.headers().get("sec-websocket-protocol").unwrap(),
        "mcp"
    );
    Ok(socket)
}

/// The handshake's request for `url`, asking for the `mcp` subprotocol, with
/// `Authorization: Bearer <token>` when there is one.
pub fn upgrade_request(url: &str, token: Option<&str>) -> Request {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("mcp"));
    if let Some(token) = token {
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        request.headers_mut().insert("authorization", bearer);
    }
    request
}

/// [`open`], then the session-era handshake.
pub async fn open_initialized(url: &str) -> Socket {
    let mut socket = open(url).await;
    initialize(&mut socket).await;
    socket
}

/// The next JSON-RPC message, past pings and pongs.
pub async fn next_message<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<S>,
) -> Value {
    loop {
        match socket.next().await.expect("a frame").expect("a good frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Sends one JSON-RPC message without waiting for anything.
pub async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<S>,
    message: &Value,
) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// Sends a request and returns the next message (the gateway sends nothing unasked here).
pub async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut WebSocketStream<S>,
    id: u64,
    method: &str,
    params: Value,
) -> Value {
    let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    send(socket, &message).await;
    next_message(socket).await
}

/// `initialize` (checking the gateway answered it) and `notifications/initialized`.
pub async fn initialize<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut WebSocketStream<S>) {
    let reply = request(
        socket,
        0,
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "raw-ws", "version": "0"}}),
    )
    .await;
    assert_eq!(reply["result"]["serverInfo"]["name"], "mcps", "{reply}");
    send(
        socket,
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
}
