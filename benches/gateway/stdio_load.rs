//! Calls over stdio: a client that spawns a server (the echo upstream itself, or
//! `mcps stdio` in front of it) and speaks newline-delimited JSON-RPC to it.

use std::{
    io::{BufRead, BufReader, Write},
    process::{ChildStdin, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    load::{Era, Measured, modern_meta},
    procs::Process,
};

pub struct StdioClient {
    pub process: Process,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
    /// What each call's params carry in `_meta`: the revision's keys in 2026-07-28.
    meta: Option<Value>,
}

impl StdioClient {
    /// Spawns `command` and performs the session-era handshake.
    pub fn spawn(command: Command) -> Self {
        Self::spawn_in(command, Era::Legacy)
    }

    /// Spawns `command` for a client of `era`: a session-era one performs the handshake, a
    /// 2026-07-28 one needs none.
    pub fn spawn_in(mut command: Command, era: Era) -> Self {
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
            meta: None,
        };
        if let Era::Modern = era {
            client.meta = Some(modern_meta());
            return client;
        }
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
        self.warm_up(tool);
        self.measure(tool, calls)
    }

    /// Adds `key` to each call's `_meta`: a key of the protocol's own that the gateway's own
    /// way does not read sends a 2026-07-28 call through rmcp's typed server.
    pub fn with_meta_key(mut self, key: &str) -> Self {
        if let Some(meta) = &mut self.meta {
            meta[key] = json!(true);
        }
        self
    }

    /// A few calls of `tool`, not measured.
    pub fn warm_up(&mut self, tool: &str) {
        for _ in 0..5 {
            let call = self.call(tool);
            self.send(&call);
            self.receive();
        }
    }

    /// The text of the next call of `tool`.
    fn call(&mut self, tool: &str) -> String {
        let id = self.next_id;
        self.next_id += 1;
        let mut params =
            json!({"name": tool, "arguments": {"message": "hello from the benchmark"}});
        if let Some(meta) = &self.meta {
            params["_meta"] = meta.clone();
        }
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
    }

    /// `calls` sequential calls of `tool`, measured.
    pub fn measure(&mut self, tool: &str, calls: usize) -> Measured {
        let mut latencies: Vec<Duration> = Vec::with_capacity(calls);
        let mut errors = 0;
        let started = Instant::now();
        for _ in 0..calls {
            let call = self.call(tool);
            let sent = Instant::now();
            self.send(&call);
            if self.receive().contains("\"result\"") {
                latencies.push(sent.elapsed());
            } else {
                errors += 1;
            }
        }
        Measured::new(latencies, errors, started.elapsed())
    }
}
