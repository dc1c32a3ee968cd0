//! Upstream servers that tests start over HTTP on a free loopback port.

use std::{
    fs::File,
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

use super::{
    clients_dir, everything_command,
    http::{RawSession, modern_tool_call},
    installed,
    process::ServeProcess,
    python,
};

/// A server process listening on `port`, killed on drop.
pub struct ServedUpstream {
    child: Child,
    pub port: u16,
}

impl ServedUpstream {
    /// Runs the command `build` makes for a free port and waits until it listens. A port
    /// found free can be taken before the server binds it (the kernel also hands it to the
    /// suite's outgoing connections): a server that exits without listening is started again
    /// on another port.
    pub fn start(what: &str, build: impl Fn(u16) -> Command) -> Self {
        Self::start_writing(what, None, build)
    }

    /// The same, with the server's output (both streams) written to `output`.
    pub fn start_writing(
        what: &str,
        output: Option<&Path>,
        build: impl Fn(u16) -> Command,
    ) -> Self {
        let mut ended = String::new();
        for _ in 0..3 {
            let build = |port| {
                let mut command = build(port);
                if let Some(output) = output {
                    let file = File::create(output).expect("a file for the server's output");
                    let copy = file.try_clone().expect("the output file, twice");
                    command.stdout(file).stderr(copy);
                } else {
                    command.stdout(Stdio::null()).stderr(Stdio::null());
                }
                command
            };
            match Self::try_start_on(super::free_port(), what, build) {
                Ok(served) => return served,
                Err(how) => ended = how,
            }
        }
        panic!("{what} exited three times before it listened, the last time with {ended}")
    }

    /// Runs the command `build` makes for `port` and waits until it listens.
    pub fn start_on(port: u16, what: &str, build: impl FnOnce(u16) -> Command) -> Self {
        let build = |port| {
            let mut command = build(port);
            command.stdout(Stdio::null()).stderr(Stdio::null());
            command
        };
        Self::try_start_on(port, what, build)
            .unwrap_or_else(|how| panic!("{what} exited before it listened, with {how}"))
    }

    /// The server, once it listens; or how it ended before it did.
    fn try_start_on(
        port: u16,
        what: &str,
        build: impl FnOnce(u16) -> Command,
    ) -> Result<Self, String> {
        let mut child = build(port)
            .spawn()
            .unwrap_or_else(|error| panic!("start {what}: {error}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(status.to_string());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not listen within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { child, port })
    }

    /// `server-everything` in `mode` (`streamableHttp`, `sse`).
    pub fn everything(mode: &str) -> Self {
        Self::start("server-everything", |port| {
            let (node, everything) = everything_command();
            let mut command = Command::new(node);
            command
                .args([everything.as_str(), mode])
                .env("PORT", port.to_string());
            command
        })
    }

    /// supergateway serving the reference `mcp-server-time` (which it runs over stdio) as
    /// `output` (`ws`, `sse`, `streamableHttp`), with `extra` arguments.
    pub fn supergateway(output: &str, extra: &[&str]) -> Self {
        Self::start("supergateway", |port| {
            let mut command = Command::new(installed("MCPS_TEST_NODE"));
            command
                .arg(installed("MCPS_TEST_SUPERGATEWAY"))
                // A command line its shell runs.
                .args([
                    "--stdio",
                    &format!("'{}' -m mcp_server_time --local-timezone UTC", python()),
                ])
                .args(["--outputTransport", output, "--port", &port.to_string()])
                .args(["--logLevel", "none"])
                .args(extra);
            command
        })
    }

    /// A Python script of `tests/clients` that takes `--http PORT`.
    pub fn python_script(script: &str) -> Self {
        Self::start(script, |port| python_command(script, port))
    }

    /// The same, with `arguments` after the port.
    pub fn python_script_with(script: &str, arguments: &[&str]) -> Self {
        Self::start(script, |port| {
            let mut command = python_command(script, port);
            command.args(arguments);
            command
        })
    }

    /// The same, on `port` (to stand in for a server that stopped there).
    pub fn python_script_on(port: u16, script: &str) -> Self {
        Self::start_on(port, script, |port| python_command(script, port))
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn python_command(script: &str, port: u16) -> Command {
    let mut command = Command::new(python());
    command
        .arg(clients_dir().join(script))
        .args(["--http", &port.to_string()]);
    command
}

impl Drop for ServedUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that `tool`, the reference `mcp-server-time`'s `get_current_time` as `gateway` names
/// it (see [`ServedUpstream::supergateway`]), tells the time in UTC to a client of each era:
/// `session`'s, and a 2026-07-28 call of its own.
pub async fn assert_tells_the_time(gateway: &ServeProcess, session: &mut RawSession, tool: &str) {
    let arguments = json!({"timezone": "UTC"});
    let reply = session.call(tool, arguments.clone()).await;
    assert_eq!(
        reply["result"]["structuredContent"]["timezone"],
        "UTC",
        "session era, {tool}: {reply}\n{}",
        gateway.log()
    );
    let reply = modern_tool_call(&gateway.mcp_url(), tool, json!({"arguments": arguments})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["timezone"],
        "UTC",
        "2026-07-28, {tool}: {reply}\n{}",
        gateway.log()
    );
}
