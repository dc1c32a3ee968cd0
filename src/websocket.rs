//! MCP over WebSocket, for either role: one JSON-RPC message per text frame, subprotocol
//! `mcp`. The gateway serves it at `/ws` (see [`crate::downstream::websocket`]) and speaks it
//! to WebSocket upstreams.
//!
//! A frame that is not a JSON-RPC message gets an error reply when we serve (`-32700` for
//! text that is not JSON, `-32600` for anything else, the connection stays open) and is
//! dropped with a warning when we are the client. A message over the size limit closes the
//! connection with 1009 (message too big), as RFC 6455 says; it is never buffered whole.
//! When we serve, a client that stops reading is given up on (see [`Outbound`]).

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
    sync::{Mutex, mpsc},
    task::JoinHandle,
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

use crate::metrics::{ClientTransport, metrics};
use crate::{
    jsonrpc::{error_reply, too_deep, too_deep_reply, unreadable_answer},
    outbound::Outbound,
};

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
    /// Serving: how the client is bounded, and bad frames get an error reply. As a client:
    /// none, and bad frames are dropped.
    serving: Option<Serving>,
    _role: PhantomData<fn() -> R>,
}

/// Resolves, with the reason, when the client's credential ends.
pub type Ending = std::pin::Pin<Box<dyn Future<Output = String> + Send + Sync>>;

/// The serving side's own way with some messages (see `downstream::message_calls`): each
/// text frame is offered to it before it is parsed for rmcp.
pub trait OwnWay: Send + Sync {
    /// Takes `message` if this way serves it: `false` leaves it to rmcp.
    fn take(&self, message: &[u8]) -> bool;

    /// The session ended: what this way serves ends with it.
    fn end(&self);
}

/// An own way, and the messages (JSON text) it has for the client.
pub type OwnWayOut = (Arc<dyn OwnWay>, mpsc::Receiver<String>);

/// What bounds a client we serve.
pub struct ClientBounds {
    /// What the client has not taken yet.
    pub outbound: Outbound,
    /// The session ends after this long without a frame from the client (a ping counts).
    pub idle: std::time::Duration,
    /// The deepest nesting a message may have (`limits.max_json_depth`).
    pub max_depth: usize,
    /// When set, the session ends when this resolves: closed with 1008 (policy violation)
    /// and the reason.
    pub ends: Option<Ending>,
    /// The calls the door serves itself, if it serves any.
    pub own_way: Option<OwnWayOut>,
}

struct Serving {
    outbound: Arc<Outbound>,
    idle: std::time::Duration,
    max_depth: usize,
    ends: Ending,
    own_way: Option<Arc<dyn OwnWay>>,
    /// Writes the own way's messages.
    own_writer: Option<JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(own_way) = &self.own_way {
            own_way.end();
        }
        if let Some(writer) = &self.own_writer {
            writer.abort();
        }
    }
}

impl<R, S> WebSocketTransport<R, S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// The transport of the side that serves MCP.
    pub fn serving(socket: WebSocketStream<S>, bounds: ClientBounds) -> Self {
        let (writer, frames) = socket.split();
        let writer = Arc::new(Mutex::new(writer));
        let outbound = Arc::new(bounds.outbound);
        let (own_way, own_writer) = match bounds.own_way {
            Some((own_way, messages)) => {
                let written = tokio::spawn(write_own(messages, writer.clone(), outbound.clone()));
                (Some(own_way), Some(written))
            }
            None => (None, None),
        };
        let serving = Serving {
            outbound,
            idle: bounds.idle,
            max_depth: bounds.max_depth,
            ends: bounds
                .ends
                .unwrap_or_else(|| Box::pin(std::future::pending())),
            own_way,
            own_writer,
        };
        Self {
            frames,
            writer,
            serving: Some(serving),
            _role: PhantomData,
        }
    }

    /// The transport of the side that is an MCP client.
    pub fn client(socket: WebSocketStream<S>) -> Self {
        let (writer, frames) = socket.split();
        Self {
            frames,
            writer: Arc::new(Mutex::new(writer)),
            serving: None,
            _role: PhantomData,
        }
    }

    fn outbound(&self) -> Option<&Arc<Outbound>> {
        self.serving.as_ref().map(|serving| &serving.outbound)
    }
}

impl<R, S> WebSocketTransport<R, S>
where
    R: ServiceRole,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Answers (or, as a client, drops) a frame that is not a JSON-RPC message.
    async fn refuse(&self, reply: TxJsonRpcMessage<R>) {
        if self.serving.is_none() {
            tracing::warn!("dropped a WebSocket frame that is not a JSON-RPC message");
            return;
        }
        if let Err(error) = write(&self.writer, self.outbound().map(Arc::as_ref), &reply).await {
            tracing::debug!(%error, "could not answer a bad frame");
        }
    }

    /// Closes with 1009 after a message over the limit.
    async fn close_too_big(&self) {
        self.close_with(CloseCode::Size, "message too big").await;
    }

    /// Sends a close frame (best effort: a client that reads nothing gets none).
    async fn close_with(&self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.to_owned().into(),
        };
        let send = async {
            let _ = self
                .writer
                .lock()
                .await
                .send(Message::Close(Some(frame)))
                .await;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), send).await;
    }
}

/// Writes the own way's messages, each a text frame, in order, within the client's outbound
/// bounds.
async fn write_own<S>(messages: mpsc::Receiver<String>, writer: Writer<S>, outbound: Arc<Outbound>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let sent = &metrics().bytes(ClientTransport::WebSocket).sent;
    outbound
        .write_in_order(messages, |text| {
            sent.inc_by(text.len() as u64);
            let writer = writer.clone();
            async move {
                writer
                    .lock()
                    .await
                    .send(Message::text(text))
                    .await
                    .map_err(std::io::Error::other)
            }
        })
        .await;
}

/// Sends `message` as one text frame, within `outbound`'s bounds when there are any.
async fn write<S, T>(
    writer: &Writer<S>,
    outbound: Option<&Outbound>,
    message: &T,
) -> Result<(), tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: serde::Serialize,
{
    let text = serde_json::to_string(message)
        .map_err(|error| tungstenite::Error::Io(std::io::Error::other(error)))?;
    let Some(outbound) = outbound else {
        return writer.lock().await.send(Message::text(text)).await;
    };
    // Only a serving transport has outbound bounds: these are a client's bytes.
    let bytes = text.len();
    metrics()
        .bytes(ClientTransport::WebSocket)
        .sent
        .inc_by(bytes as u64);
    let mut failed = None;
    let sent = outbound
        .write(bytes, async {
            writer
                .lock()
                .await
                .send(Message::text(text))
                .await
                .map_err(|error| {
                    failed = Some(error);
                    std::io::Error::other("WebSocket send failed")
                })
        })
        .await;
    match (sent, failed) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(error)) => Err(error),
        (Err(error), None) => Err(tungstenite::Error::Io(error)),
    }
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
        let outbound = self.outbound().cloned();
        async move { write(&writer, outbound.as_deref(), &item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<R>> {
        loop {
            let next = match &mut self.serving {
                Some(Serving {
                    outbound,
                    idle,
                    ends,
                    ..
                }) => tokio::select! {
                    next = self.frames.next() => next,
                    () = outbound.given_up() => return None,
                    () = tokio::time::sleep(*idle) => {
                        tracing::info!("WebSocket session idle for {idle:?}; closing it");
                        return None;
                    }
                    why = ends.as_mut() => {
                        tracing::info!("{why}; closing the WebSocket session it opened");
                        self.close_with(CloseCode::Policy, &why).await;
                        return None;
                    }
                },
                None => self.frames.next().await,
            };
            let frame = match next? {
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
            let max_depth = self.serving.as_ref().map(|serving| serving.max_depth);
            if let (Some(_), Message::Text(text)) = (max_depth, &frame) {
                let received = &metrics().bytes(ClientTransport::WebSocket).received;
                received.inc_by(text.len() as u64);
            }
            let own_way = self
                .serving
                .as_ref()
                .and_then(|serving| serving.own_way.as_ref());
            match frame {
                Message::Text(text)
                    if let Some(max) = max_depth
                        && too_deep(text.as_bytes(), max) =>
                {
                    self.refuse(too_deep_reply(max)).await;
                }
                Message::Text(text) if own_way.is_some_and(|way| way.take(text.as_bytes())) => {}
                Message::Text(text) => match serde_json::from_str(text.as_str()) {
                    Ok(message) => return Some(message),
                    Err(error) => {
                        // An answer to one of our requests is not answered back: its request
                        // fails here, at once.
                        let peer = if self.serving.is_some() {
                            "the client"
                        } else {
                            "the upstream"
                        };
                        if let Some(failed) = unreadable_answer(text.as_bytes(), &error, peer) {
                            tracing::warn!(%error, "a WebSocket answer that cannot be read; its request fails");
                            return Some(failed);
                        }
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
        if self
            .outbound()
            .is_some_and(|outbound| outbound.is_given_up())
        {
            // A close frame would wait behind what the client is not reading.
            return Ok(());
        }
        self.writer.lock().await.close().await
    }
}
