//! The gateway as a stdio MCP server (`mcps stdio`): one JSON-RPC message per line.
//!
//! We read stdin ourselves instead of using rmcp's stdio transport so that every bad line gets
//! an answer: a line that is not JSON gets `-32700`, JSON that is not a JSON-RPC message gets
//! `-32600` (with its `id` when it has one), and a line over `limits.max_line_bytes` gets
//! `-32600` without ever being buffered whole. The session goes on after each of them.
//! A reader task parses lines into a bounded channel (back-pressure on a fast writer); stdout is
//! written only through one lock, one whole message at a time, so nothing else can reach it.

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

use crate::{
    jsonrpc::error_reply,
    line_reader::{Line, LineReader, write_json_line},
};

/// Messages parsed ahead of the service loop; small, since each may be large.
const INCOMING_QUEUE: usize = 32;

type SharedWriter = Arc<Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// rmcp transport over a line-oriented reader and writer (stdin/stdout in production).
pub struct StdioServerTransport {
    incoming: mpsc::Receiver<ClientJsonRpcMessage>,
    writer: SharedWriter,
    reader: JoinHandle<()>,
}

impl StdioServerTransport {
    pub fn new<R, W>(input: R, output: W, max_line_bytes: usize) -> Self
    where
        R: AsyncBufRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let writer: SharedWriter = Arc::new(Mutex::new(Box::new(output)));
        let (sender, incoming) = mpsc::channel(INCOMING_QUEUE);
        let reader = tokio::spawn(read_messages(
            LineReader::new(input, max_line_bytes),
            sender,
            writer.clone(),
            max_line_bytes,
        ));
        Self {
            incoming,
            writer,
            reader,
        }
    }
}

impl Drop for StdioServerTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_messages<R: AsyncBufRead + Unpin>(
    mut lines: LineReader<R>,
    sender: mpsc::Sender<ClientJsonRpcMessage>,
    writer: SharedWriter,
    max_line_bytes: usize,
) {
    loop {
        let reply = match lines.next_line().await {
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(%error, "stdin read failed");
                return;
            }
            Ok(Some(Line::Oversized(_))) => ServerJsonRpcMessage::error(
                ErrorData::invalid_request(
                    format!("message exceeds the {max_line_bytes}-byte line limit"),
                    None,
                ),
                None,
            ),
            Ok(Some(Line::Complete(line))) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
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
        };
        if write_json_line(&writer, &reply).await.is_err() {
            return;
        }
    }
}

impl Transport<RoleServer> for StdioServerTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        async move { write_json_line(&writer, &item).await }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleServer>>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.incoming.close();
        self.writer.lock().await.flush().await
    }
}
