//! The rmcp transport over a stdio upstream's pipes: one JSON-RPC message per line.
//!
//! Ours rather than rmcp's so that a misbehaving upstream fails loudly instead of leaving
//! calls waiting: rmcp's reader drops a line over the size cap and goes on, and the call whose
//! answer it was waits for its deadline. Here a line over `limits.max_line_bytes` (a huge
//! answer, or a flood with no newline) closes the connection, with the reason recorded: the
//! calls in flight fail at once, and the supervisor restarts the upstream. Lines that are not
//! JSON-RPC (a banner some servers print) are skipped with a warning, up to a limit. An answer
//! that cannot be read (bytes that are not UTF-8, a result of the wrong shape) fails its call
//! at once; a line meant as JSON-RPC that cannot be read at all (half a message) closes the
//! connection, as the answer it carried will never come.

use std::sync::{Arc, Mutex};

use rmcp::{
    RoleClient,
    model::JsonRpcMessage,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    process::{ChildStdin, ChildStdout},
};

use super::lane::Lane;
use crate::{
    jsonrpc::{meant_as_jsonrpc, unreadable_answer},
    line_reader::{Line, LineReader, write_json_line},
    sync::lock,
};

/// More non-JSON-RPC lines than this on one connection is a flood of garbage, not a banner.
const GARBAGE_LINES: usize = 100;

/// Why our side closed an upstream connection, for its failure reason.
pub type ClosedBecause = Arc<Mutex<Option<String>>>;

/// Over a child's pipes in production; over any byte streams (the fuzz target's).
pub struct LineTransport<R = ChildStdout, W = ChildStdin> {
    lines: LineReader<BufReader<R>>,
    stdin: Arc<tokio::sync::Mutex<W>>,
    upstream: Arc<str>,
    max_line_bytes: usize,
    garbage: usize,
    closed_because: ClosedBecause,
    /// The gateway's calls, which skip rmcp (see [`Lane`]).
    lane: Arc<Lane<W>>,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin + Send> LineTransport<R, W> {
    pub fn new(
        upstream: Arc<str>,
        stdout: R,
        stdin: W,
        max_line_bytes: usize,
        closed_because: ClosedBecause,
    ) -> Self {
        let stdin = Arc::new(tokio::sync::Mutex::new(stdin));
        Self {
            lines: LineReader::new(BufReader::new(stdout), max_line_bytes),
            lane: Arc::new(Lane::new(stdin.clone())),
            stdin,
            upstream,
            max_line_bytes,
            garbage: 0,
            closed_because,
        }
    }

    /// The lane for the gateway's own calls on this connection.
    pub fn lane(&self) -> Arc<Lane<W>> {
        self.lane.clone()
    }
}

impl<R, W> LineTransport<R, W> {
    fn close_because(&self, reason: String) {
        tracing::error!(upstream = %self.upstream, "{reason}; closing its connection");
        *lock(&self.closed_because) = Some(reason);
    }
}

impl<R, W> Transport<RoleClient> for LineTransport<R, W>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let stdin = self.stdin.clone();
        async move { write_json_line(&stdin, &item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        self.next_message().await
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.stdin.lock().await.shutdown().await
    }
}

impl<R: AsyncRead + Unpin, W> LineTransport<R, W> {
    /// The next message for rmcp: lines that answer the lane's calls are taken on the way.
    async fn next_message(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let line = match self.lines.next_line().await {
                Ok(Some(Line::Complete(line))) => line,
                Ok(Some(Line::Oversized(_))) => {
                    let cap = self.max_line_bytes;
                    self.close_because(format!(
                        "sent a message longer than limits.max_line_bytes ({cap} bytes)"
                    ));
                    return None;
                }
                Ok(None) => return None,
                Err(error) => {
                    tracing::debug!(upstream = %self.upstream, %error, "stdout read failed");
                    return None;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) || self.lane.take(line, &self.upstream) {
                continue;
            }
            match serde_json::from_slice(line) {
                Ok(message) => return Some(message),
                Err(error) => {
                    let upstream = format!("upstream {}", self.upstream);
                    if let Some(failed) = unreadable_answer(line, &error, &upstream) {
                        tracing::warn!(upstream = %self.upstream, %error, "an answer that cannot be read; its call fails");
                        if let JsonRpcMessage::Error(failed) = &failed
                            && let Some(id) = &failed.id
                            && self
                                .lane
                                .take_unreadable(id, failed.error.clone(), &self.upstream)
                        {
                            continue;
                        }
                        return Some(failed);
                    }
                    if meant_as_jsonrpc(line) {
                        self.close_because(format!(
                            "sent a JSON-RPC message that cannot be read ({error})"
                        ));
                        return None;
                    }
                    let head = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
                    self.garbage += 1;
                    if self.garbage > GARBAGE_LINES {
                        self.close_because(format!(
                            "wrote more than {GARBAGE_LINES} lines that are not JSON-RPC to stdout"
                        ));
                        return None;
                    }
                    tracing::warn!(upstream = %self.upstream, %error, "skipping a stdout line that is not JSON-RPC: {head}");
                }
            }
        }
    }
}
