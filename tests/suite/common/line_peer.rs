//! A process that speaks JSON-RPC in lines on its standard streams (`mcps stdio`, mcp-remote),
//! driven by a test as a stdio client drives its server.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStderr, ChildStdin, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use serde_json::Value;

/// The process, killed on drop.
pub struct LinePeer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl LinePeer {
    /// Starts `command` with its stdin and stdout piped to the test.
    pub fn spawn(mut command: std::process::Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a stdio peer");
        Self::of(child.stdin.take(), child.stdout.take(), child)
    }

    /// A process already started with its stdin and stdout piped.
    pub fn from_child(mut child: Child) -> Self {
        Self::of(child.stdin.take(), child.stdout.take(), child)
    }

    fn of(
        stdin: Option<ChildStdin>,
        stdout: Option<std::process::ChildStdout>,
        child: Child,
    ) -> Self {
        let (stdin, stdout) = (stdin.expect("piped stdin"), stdout.expect("piped stdout"));
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            lines,
        }
    }

    /// Its stderr, when the command piped it.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Writes one line.
    pub fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends one line and returns the next response written to stdout within `limit`,
    /// skipping the notifications the peer may send meanwhile (e.g. `tools/list_changed`).
    pub fn exchange_within(&mut self, line: &str, limit: Duration) -> Value {
        self.send(line);
        loop {
            let reply = self.lines.recv_timeout(limit).expect("a reply on stdout");
            let message: Value = serde_json::from_str(&reply)
                .unwrap_or_else(|_| panic!("stdout holds non-JSON: {reply}"));
            let is_notification = message.get("method").is_some() && message.get("id").is_none();
            if !is_notification {
                return message;
            }
        }
    }

    /// What the peer writes from now on, each line as it comes (instead of `exchange`).
    pub fn transcript(&mut self) -> Arc<Mutex<String>> {
        let (_, nothing) = mpsc::channel();
        let lines = std::mem::replace(&mut self.lines, nothing);
        let heard = Arc::new(Mutex::new(String::new()));
        let into = heard.clone();
        std::thread::spawn(move || {
            for line in lines {
                let mut heard = into.lock().unwrap();
                heard.push_str(&line);
                heard.push('\n');
            }
        });
        heard
    }

    /// [`Self::exchange_within`] 30 s.
    pub fn exchange(&mut self, line: &str) -> Value {
        self.exchange_within(line, Duration::from_secs(30))
    }
}

impl Drop for LinePeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
