//! MCP over WebSocket, for either role: one JSON-RPC message per text frame, subprotocol
//! `mcp`. The gateway serves it at `/ws` (see [`crate::downstream::websocket`]) and speaks it
//! to WebSocket upstreams.
//!
//! A frame that is not a JSON-RPC message gets an error reply when we serve (`-32700` for
//! text that is not JSON, `-32600` for anything else, the connection stays open) and is
//! dropped with a warning when we are the client. A message over the size limit closes the
//! connection with 1009 (message too big), as RFC 6455 says; it is never buffered whole.

use std::{marker::PhantomData, sync::Arc};

use futures::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use rmcp::{
    ErrorData,
    model::JsonRpcMessage,
    service::{RxJsonRpcMessage, ServiceRole, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::Mutex,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

use crate::jsonrpc::error_reply;

/// The WebSocket subprotocol of MCP.
pub const SUBPROTOCOL: &str = "mcp";

/// Frame and message limits for a connection that accepts messages of up to `max_bytes`.
pub fn config(max_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_bytes))
        .max_frame_size(Some(max_bytes))
}

type Writer<S> = Arc<Mutex<SplitSink<WebSocketStream<S>, Message>>>;

/// An rmcp transport over an open WebSocket.
pub struct WebSocketTransport<R, S> {
    frames: SplitStream<WebSocketStream<S>>,
    writer: Writer<S>,
    /// Serving: bad frames get an error reply. As a client: they are dropped.
    answer_bad_frames: bool,
    _role: PhantomData<fn() -> R>,
}

impl<R, S> WebSocketTransport<R, S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// The transport of the side that serves MCP.
    pub fn serving(socket: WebSocketStream<S>) -> Self {
        Self::new(socket, true)
    }

    /// The transport of the side that is an MCP client.
    pub fn client(socket: WebSocketStream<S>) -> Self {
        Self::new(socket, false)
    }

    fn new(socket: WebSocketStream<S>, answer_bad_frames: bool) -> Self {
        let (writer, frames) = socket.split();
        Self {
            frames,
            writer: Arc::new(Mutex::new(writer)),
            answer_bad_frames,
            _role: PhantomData,
        }
    }
}

impl<R, S> WebSocketTransport<R, S>
where
    R: ServiceRole,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Answers (or, as a client, drops) a frame that is not a JSON-RPC message.
    async fn refuse(&self, reply: TxJsonRpcMessage<R>) {
        if !self.answer_bad_frames {
            tracing::warn!("dropped a WebSocket frame that is not a JSON-RPC message");
            return;
        }
        if let Err(error) = write(&self.writer, &reply).await {
            tracing::debug!(%error, "could not answer a bad frame");
        }
    }

    /// Closes with 1009 after a message over the limit.
    async fn close_too_big(&self) {
        let frame = CloseFrame {
            code: CloseCode::Size,
            reason: "message too big".into(),
        };
        let _ = self
            .writer
            .lock()
            .await
            .send(Message::Close(Some(frame)))
            .await;
    }
}

async fn write<S, T>(writer: &Writer<S>, message: &T) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: serde::Serialize,
{
    let text = serde_json::to_string(message)
        .map_err(|error| tungstenite::Error::Io(std::io::Error::other(error)))?;
    writer.lock().await.send(Message::text(text)).await
}

impl<R, S> Transport<R> for WebSocketTransport<R, S>
where
    R: ServiceRole,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Error = tungstenite::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<R>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move { write(&writer, &item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<R>> {
        loop {
            let frame = match self.frames.next().await? {
                Ok(frame) => frame,
                Err(tungstenite::Error::Capacity(error)) => {
                    tracing::warn!(%error, "WebSocket message over the size limit; closing");
                    self.close_too_big().await;
                    return None;
                }
                Err(error) => {
                    tracing::debug!(%error, "WebSocket closed");
                    return None;
                }
            };
            match frame {
                Message::Text(text) => match serde_json::from_str(text.as_str()) {
                    Ok(message) => return Some(message),
                    Err(error) => {
                        let reply = error_reply::<R::Req, R::Resp, R::Not>(text.as_bytes(), &error);
                        self.refuse(reply).await;
                    }
                },
                Message::Binary(_) => {
                    let error = ErrorData::invalid_request(
                        "Invalid Request: send each JSON-RPC message as a text frame",
                        None,
                    );
                    self.refuse(JsonRpcMessage::error(error, None)).await;
                }
                Message::Close(_) => return None,
                // tungstenite answers pings itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.lock().await.close().await
    }
}
