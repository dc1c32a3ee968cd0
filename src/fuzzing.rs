//! The fuzz target's way in (`fuzz/`, with the `fuzzing` feature): arbitrary bytes through
//! every JSON-RPC framing we parse ourselves, on the real transports:
//! - stdio lines, as a client's stdin ([`StdioServerTransport`]) and as an upstream's stdout
//!   ([`LineTransport`]);
//! - WebSocket frames, as the server of a client and as the client of an upstream
//!   ([`WebSocketTransport`]);
//! - SSE events from a legacy SSE upstream ([`sse::event_stream`]).
//!
//! Whatever the bytes, nothing may panic or hang, and everything we write back to a client
//! (the error replies to bad input) must be JSON.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, OnceLock},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use rmcp::{RoleClient, RoleServer, transport::Transport};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::Role};

use crate::{
    downstream::stdio::StdioServerTransport,
    jsonrpc::MessageLimits,
    outbound::Outbound,
    upstream::{line_transport::LineTransport, sse},
    websocket::{ClientBounds, WebSocketTransport, config},
};

/// Small, so that inputs reach the over-the-limit paths.
const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_DEPTH: usize = 8;

/// Runs one input. Its first byte picks the parser; the rest is what the peer sent.
pub fn framing(data: &[u8]) {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    runtime().block_on(async {
        let parse = async {
            match selector % 5 {
                0 => client_stdin(input).await,
                1 => upstream_stdout(input).await,
                2 => websocket(input, Role::Server).await,
                3 => websocket(input, Role::Client).await,
                _ => sse_events(input, selector).await,
            }
        };
        // Every input is finite, so every parser must reach its end.
        tokio::time::timeout(Duration::from_secs(10), parse)
            .await
            .expect("a parser hung on finite input");
    });
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

async fn client_stdin(input: &[u8]) {
    let written = Recorder::default();
    let mut transport = StdioServerTransport::new(
        std::io::Cursor::new(input.to_vec()),
        written.clone(),
        MessageLimits {
            max_bytes: MAX_MESSAGE_BYTES,
            max_depth: MAX_DEPTH,
        },
        Outbound::new(usize::MAX, Duration::from_secs(60)),
        None,
    );
    while Transport::<RoleServer>::receive(&mut transport)
        .await
        .is_some()
    {}
    drop(transport);
    written.check_json_lines();
}

async fn upstream_stdout(input: &[u8]) {
    let mut transport = LineTransport::new(
        Arc::from("fuzz"),
        std::io::Cursor::new(input.to_vec()),
        tokio::io::sink(),
        MAX_MESSAGE_BYTES,
        Arc::default(),
    );
    while Transport::<RoleClient>::receive(&mut transport)
        .await
        .is_some()
    {}
}

/// `role` is ours: as the server we read masked client frames, as the client unmasked ones.
async fn websocket(input: &[u8], role: Role) {
    let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
    let socket =
        WebSocketStream::from_raw_socket(ours, role, Some(config(MAX_MESSAGE_BYTES))).await;
    let input = input.to_vec();
    // The peer sends its bytes, then reads (and drops) whatever we answer until we close.
    let peer = tokio::spawn(async move {
        let _ = theirs.write_all(&input).await;
        let _ = theirs.shutdown().await;
        let mut sink = vec![0; 16 * 1024];
        while matches!(theirs.read(&mut sink).await, Ok(read) if read > 0) {}
    });
    match role {
        Role::Server => {
            let bounds = ClientBounds {
                outbound: Outbound::new(usize::MAX, Duration::from_secs(60)),
                idle: Duration::from_secs(60),
                max_depth: MAX_DEPTH,
                ends: None,
                own_way: None,
            };
            let mut transport = WebSocketTransport::<RoleServer, _>::serving(socket, bounds);
            while transport.receive().await.is_some() {}
            let _ = transport.close().await;
        }
        Role::Client => {
            let mut transport = WebSocketTransport::<RoleClient, _>::client(socket);
            while transport.receive().await.is_some() {}
            let _ = transport.close().await;
        }
    }
    let _ = peer.await;
}

/// The bytes arrive in chunks of a size the selector picks, so events straddle them.
async fn sse_events(input: &[u8], selector: u8) {
    let chunk = usize::from(selector / 5).max(1);
    let chunks: Vec<std::io::Result<Bytes>> = input
        .chunks(chunk)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    let mut events = sse::event_stream(futures::stream::iter(chunks), MAX_MESSAGE_BYTES);
    while let Some(Ok(event)) = events.next().await {
        let _ = sse::message_of(event);
    }
}

/// An in-memory writer whose bytes can be read back.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<u8>>>);

impl Recorder {
    /// Every line written is JSON.
    fn check_json_lines(&self) {
        let written = self.0.lock().expect("not poisoned");
        for line in written.split(|byte| *byte == b'\n') {
            if !line.is_empty() {
                assert!(
                    serde_json::from_slice::<serde_json::Value>(line).is_ok(),
                    "wrote a line that is not JSON: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds of the fuzz corpus, each through its parser: a smoke test that the harness
    /// itself works, run with the unit tests.
    #[test]
    fn the_seed_inputs_go_through_every_parser() {
        let seeds: &[&[u8]] = &[
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\nnot json\n{\"id\":2}\n",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n{[[[\n",
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n\n",
            &[0x81, 0x02, b'{', b'}'],
            &[0x81, 0x82, 1, 2, 3, 4, b'{' ^ 1, b'}' ^ 2],
        ];
        for seed in seeds {
            for selector in 0..10u8 {
                let mut input = vec![selector];
                input.extend_from_slice(seed);
                framing(&input);
            }
        }
    }
}
