//! Calls over stdio: a client that spawns a server (the echo upstream itself, or
//! `mcps stdio` in front of it) and speaks newline-delimited JSON-RPC to it.

use std::{
    io::{BufRead, BufReader, Write},
    process::{ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{load::Measured, procs::Process};

pub struct StdioClient {
    pub process: Process,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
}

impl StdioClient {
    /// Spawns `command` and performs the session-era handshake.
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().expect("spawn a stdio server");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        let mut client = Self {
            process: Process {
                child,
                _config: None,
            },
            input,
            output,
            next_id: 1,
        };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "mcps-bench", "version": "0"}}});
        client.send(&init.to_string());
        client.receive();
        client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        client
    }

    fn send(&mut self, line: &str) {
        self.input.write_all(line.as_bytes()).expect("write");
        self.input.write_all(b"\n").expect("write");
        self.input.flush().expect("flush");
    }

    fn receive(&mut self) -> String {
        let mut line = String::new();
        self.output.read_line(&mut line).expect("read");
        line
    }

    /// `calls` sequential calls of `tool`.
    pub fn run(&mut self, tool: &str, calls: usize) -> Measured {
        let call = |id: u64| {
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                   "params": {"name": tool, "arguments": {"message": "hello from the benchmark"}}})
            .to_string()
        };
        for _ in 0..5 {
            let id = self.next_id;
            self.next_id += 1;
            self.send(&call(id));
            self.receive();
        }
        let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
        let mut errors = 0;
        let started = Instant::now();
        for _ in 0..calls {
            let id = self.next_id;
            self.next_id += 1;
            let sent = Instant::now();
            self.send(&call(id));
            if self.receive().contains("\"result\"") {
                latencies.push(sent.elapsed());
            } else {
                errors += 1;
            }
        }
        Measured::new(latencies, errors, started.elapsed())
    }
}
