//! A stdio upstream: the spawned child's stdout/stdin as an rmcp transport with a capped line
//! size, and its stderr copied into our log line by line under the upstream's name.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use tokio::{io::BufReader, process::ChildStderr, task::JoinHandle};

use super::{
    line_transport::{ClosedBecause, LineTransport},
    process::{self, ChildGroup, CommandSpec},
};
use crate::{
    line_reader::{Line, LineReader},
    sync::lock,
};

/// How many stderr lines an upstream keeps for the status API.
const TAIL_LINES: usize = 20;

/// The last lines an upstream's processes wrote to stderr.
#[derive(Debug, Default)]
pub struct StderrTail(Mutex<VecDeque<String>>);

impl StderrTail {
    fn push(&self, line: String) {
        let mut lines = lock(&self.0);
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        let lines = lock(&self.0);
        lines.iter().cloned().collect()
    }
}

/// A running stdio upstream process.
pub struct StdioConnection {
    pub group: ChildGroup,
    pub transport: LineTransport,
    /// Copies stderr into the log; ends when every holder of the pipe has exited.
    pub stderr_pump: JoinHandle<()>,
}

/// Spawns the command and wires its pipes.
pub fn open(
    upstream: &Arc<str>,
    spec: &CommandSpec<'_>,
    max_line_bytes: usize,
    stderr_line_bytes: usize,
    tail: Arc<StderrTail>,
    closed_because: ClosedBecause,
) -> std::io::Result<StdioConnection> {
    let spawned = process::spawn(spec)?;
    tracing::debug!(upstream = %upstream, pid = spawned.group.pid(), "spawned");
    let transport = LineTransport::new(
        upstream.clone(),
        spawned.stdout,
        spawned.stdin,
        max_line_bytes,
        closed_because,
    );
    let stderr_pump = tokio::spawn(pump_stderr(
        upstream.clone(),
        spawned.stderr,
        stderr_line_bytes,
        tail,
    ));
    Ok(StdioConnection {
        group: spawned.group,
        transport,
        stderr_pump,
    })
}

/// Logs each stderr line (cut to `cap` bytes) and keeps the last ones in `tail`, until the
/// pipe closes. It must keep reading whatever the child writes: a full stderr pipe would
/// block the child.
async fn pump_stderr(upstream: Arc<str>, stderr: ChildStderr, cap: usize, tail: Arc<StderrTail>) {
    let mut lines = LineReader::new(BufReader::new(stderr), cap);
    loop {
        match lines.next_line().await {
            Ok(Some(Line::Complete(line))) => {
                let line = String::from_utf8_lossy(line);
                tracing::info!(upstream = %upstream, "stderr: {line}");
                tail.push(line.into_owned());
            }
            Ok(Some(Line::Oversized(head))) => {
                let line = format!(
                    "{}… (line cut at {cap} bytes)",
                    String::from_utf8_lossy(head)
                );
                tracing::info!(upstream = %upstream, "stderr: {line}");
                tail.push(line);
            }
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(upstream = %upstream, %error, "stderr read failed");
                return;
            }
        }
    }
}
