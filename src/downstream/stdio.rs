//! The gateway as a stdio MCP server (`mcps stdio`): one JSON-RPC message per line.
//!
//! We read stdin ourselves instead of using rmcp's stdio transport so that every bad line gets
//! an answer: a line that is not JSON gets `-32700`, JSON that is not a JSON-RPC message gets
//! `-32600` (with its `id` when it has one), and a line over `limits.max_line_bytes` gets
//! `-32600` without ever being buffered whole. The session goes on after each of them.
//! A reader task parses lines into a bounded channel (back-pressure on a fast writer); stdout is
//! written only through one lock, one whole message at a time, so nothing else can reach it.
//! A client that stops reading stdout is given up on (see [`Outbound`]): the session ends.
//! With the gateway's own way ([`MessageCalls`]), each line is offered to it before rmcp parses
//! it, and the lines it writes go through the same lock.

mod streams;

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    io::{AsyncBufRead, AsyncWrite, AsyncWriteExt},
    sync::{Mutex, mpsc},
    task::JoinHandle,
};

pub use self::streams::standard_streams;
use super::message_calls::MessageCalls;
use crate::metrics::{ClientTransport, metrics};
use crate::{
    jsonrpc::{MessageLimits, error_reply, too_deep, too_deep_reply},
    line_reader::{Line, LineReader, json_line, write_line},
    outbound::Outbound,
};

/// Messages parsed ahead of the service loop; small, since each may be large.
const INCOMING_QUEUE: usize = 32;

type SharedWriter = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// rmcp transport over a line-oriented reader and writer (stdin/stdout in production).
pub struct StdioServerTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    writer: SharedWriter,
    outbound: Arc<Outbound>,
    reader: JoinHandle<()>,
    /// Writes the lines of the calls the door serves itself.
    own_writer: Option<JoinHandle<()>>,
}

impl StdioServerTransport {
    /// `limits` are the line size and the nesting depth a message may have; `own_way`, the
    /// calls the door serves itself and the lines they write, if it serves any.
    pub fn new<R, W>(
        input: R,
        output: W,
        limits: MessageLimits,
        outbound: Outbound,
        own_way: Option<(MessageCalls, mpsc::Receiver<String>)>,
    ) -> Self
    where
        R: AsyncBufRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let writer: SharedWriter = Arc::new(Mutex::new(Box::new(output)));
        let outbound = Arc::new(outbound);
        let (sender, incoming) = mpsc::channel(INCOMING_QUEUE);
        let (own_way, own_writer) = match own_way {
            Some((calls, lines)) => {
                let written = tokio::spawn(write_lines(lines, writer.clone(), outbound.clone()));
                (Some(calls), Some(written))
            }
            None => (None, None),
        };
        let reader = tokio::spawn(read_messages(
            LineReader::new(input, limits.max_bytes),
            sender,
            (writer.clone(), outbound.clone()),
            limits,
            own_way,
        ));
        Self {
            incoming,
            writer,
            outbound,
            reader,
            own_writer,
        }
    }
}

impl Drop for StdioServerTransport {
    fn drop(&mut self) {
        self.reader.abort();
        if let Some(writer) = &self.own_writer {
            writer.abort();
        }
    }
}

async fn read_messages<R: AsyncBufRead + Unpin>(
    mut lines: LineReader<R>,
    sender: mpsc::Sender<ClientJsonRpcMessage>,
    (writer, outbound): (SharedWriter, Arc<Outbound>),
    limits: MessageLimits,
    own_way: Option<MessageCalls>,
) {
    // The calls served on the door's own way end with the session: stdin closed, or read
    // no more.
    struct Ended(Option<MessageCalls>);
    impl Drop for Ended {
        fn drop(&mut self) {
            if let Some(calls) = &self.0 {
                calls.end();
            }
        }
    }
    let own_way = Ended(own_way);
    let received = &metrics().bytes(ClientTransport::Stdio).received;
    loop {
        let reply = match lines.next_line().await {
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "stdin read failed");
                return;
            }
            Ok(Some(Line::Oversized(_))) => ServerJsonRpcMessage::error(
                ErrorData::invalid_request(
                    format!("message exceeds the {}-byte line limit", limits.max_bytes),
                    None,
                ),
                None,
            ),
            Ok(Some(Line::Complete(line))) => {
                received.inc_by(line.len() as u64 + 1);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if too_deep(line, limits.max_depth) {
                    too_deep_reply(limits.max_depth)
                } else if own_way.0.as_ref().is_some_and(|calls| calls.take(line)) {
                    continue;
                } else {
                    match serde_json::from_slice::<ClientJsonRpcMessage>(line) {
                        Ok(message) => {
                            if sender.send(message).await.is_err() {
                                return;
                            }
                            continue;
                        }
                        Err(error) => error_reply(line, &error),
                    }
                }
            }
        };
        if send(&writer, &outbound, &reply).await.is_err() {
            return;
        }
    }
}

/// Writes the lines of the calls the door serves itself, each whole and in order, within the
/// client's outbound bounds.
async fn write_lines(lines: mpsc::Receiver<String>, writer: SharedWriter, outbound: Arc<Outbound>) {
    let sent = &metrics().bytes(ClientTransport::Stdio).sent;
    outbound
        .write_in_order(lines, |text| {
            // A line break in JSON text is whitespace outside strings (inside them it is
            // escaped): an upstream's result written over several lines becomes one.
            let mut line = if text.contains(['\r', '\n']) {
                text.replace(['\r', '\n'], " ")
            } else {
                text
            };
            line.push('\n');
            sent.inc_by(line.len() as u64);
            let writer = writer.clone();
            async move { write_line(&writer, line.as_bytes()).await }
        })
        .await;
}

/// Writes one message as a line, within the client's outbound bounds.
async fn send(
    writer: &SharedWriter,
    outbound: &Outbound,
    message: &ServerJsonRpcMessage,
) -> std::io::Result<()> {
    let line = json_line(message)?;
    metrics()
        .bytes(ClientTransport::Stdio)
        .sent
        .inc_by(line.len() as u64);
    outbound.write(line.len(), write_line(writer, &line)).await
}

impl Transport<RoleServer> for StdioServerTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        let outbound = self.outbound.clone();
        async move { send(&writer, &outbound, &item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        tokio::select! {
            message = self.incoming.recv() => message,
            () = self.outbound.given_up() => None,
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        if self.outbound.is_given_up() {
            return Ok(());
        }
        self.writer.lock().await.flush().await
    }
}
