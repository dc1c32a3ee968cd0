//! Runs `mcps` as a real process on a temporary config.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use super::mcps_bin;

/// A temporary directory holding a `proxy.yaml`.
pub struct ConfigDir {
    pub dir: tempfile::TempDir,
}

impl ConfigDir {
    pub fn new(yaml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("proxy.yaml"), yaml).expect("write config");
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("proxy.yaml")
    }
}

/// Runs `mcps <args> -c <config>` to completion; returns status, stdout, stderr.
pub fn run_mcps(config: &Path, args: &[&str]) -> (ExitStatus, String, String) {
    run_mcps_with(config, args, &[])
}

/// [`run_mcps`] with more environment variables.
pub fn run_mcps_with(
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (ExitStatus, String, String) {
    let output = Command::new(mcps_bin())
        .args(args)
        .arg("-c")
        .arg(config)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run mcps");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `mcps stdio -c <config>` with piped stdin/stdout (stderr discarded).
pub fn spawn_stdio(config: &ConfigDir) -> Child {
    spawn_stdio_on(config, Stdio::piped(), Stdio::piped(), Stdio::null())
}

/// Starts `mcps stdio -c <config>` on the standard streams given.
pub fn spawn_stdio_on(config: &ConfigDir, stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Child {
    Command::new(mcps_bin())
        .args(["stdio", "-c"])
        .arg(config.path())
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn mcps stdio")
}

/// A running `mcps serve`.
pub struct ServeProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Everything it has logged so far.
    pub log: Arc<Mutex<String>>,
    pub config: ConfigDir,
}

impl ServeProcess {
    /// Starts `mcps serve` on a free port and waits until every upstream has settled.
    pub fn start(yaml: &str) -> Self {
        Self::start_in(ConfigDir::new(yaml), &[])
    }

    /// Starts `mcps serve` on the config (and the data) in `config`, with more environment.
    pub fn start_in(config: ConfigDir, env: &[(&str, &str)]) -> Self {
        Self::start_listening(config, env, "127.0.0.1:0")
    }

    /// The same, listening on `address` (for a test that must know its URL beforehand).
    pub fn start_listening(config: ConfigDir, env: &[(&str, &str)], address: &str) -> Self {
        let mut child = Command::new(mcps_bin())
            .args(["serve", "--listen", address, "-c"])
            .arg(config.path())
            .env("RUST_LOG", "info,rmcp=warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mcps serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (found, endpoint) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("MCP endpoint: http://") {
                    let rest = &line[at + "MCP endpoint: ".len()..];
                    let url = rest.split_whitespace().next().unwrap_or("").to_owned();
                    if let Some(found) = found.take() {
                        let _ = found.send(url);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let url = endpoint
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("mcps serve did not start: {}", log.lock().unwrap()));
        let base = url.trim_end_matches("/mcp").to_owned();
        let process = Self {
            child,
            base,
            log,
            config,
        };
        process.wait_settled(Duration::from_secs(90));
        process
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// The WebSocket endpoint at `path` (`/ws` or `/ws/mcp`).
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Polls health until no upstream is starting.
    pub fn wait_settled(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let health = self.health();
            if health["status"] != "starting" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "upstreams still starting: {health}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls health until every upstream is ready (an upstream whose first try failed, say
    /// because a server it connects to was still starting, gets restarted).
    pub fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let health = self.health();
            if health["status"] == "ok" {
                return;
            }
            assert!(Instant::now() < deadline, "upstreams not ready: {health}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /api/v1/system/health` as JSON.
    pub fn health(&self) -> serde_json::Value {
        let url = format!("{}/api/v1/system/health", self.base);
        let body = blocking_get(&url);
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("health is not JSON: {body}"))
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many calls took the gateway's own lane, as its debug log says.
    pub fn lane_calls(&self) -> usize {
        super::lane_calls_in(&self.log())
    }

    /// How many typed requests of `method` (those rmcp's server read) went on an upstream's
    /// lane, as the debug log says ("answered on the lane").
    pub fn typed_on_the_lane(&self, method: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains("answered on the lane") && line.contains(method))
            .count()
    }

    /// Waits (up to 15 s) until the debug log shows `count` calls done (it is written after
    /// the answer).
    pub async fn calls_done(&self, count: usize) {
        super::wait_logged(|| self.log(), "call done", count).await;
    }

    /// Waits (up to 15 s) until the gateway has logged `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        super::wait_logged(|| self.log(), needle, 1).await;
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> ExitStatus {
        self.stop(nix::sys::signal::Signal::SIGTERM).0
    }

    /// Sends `signal`, waits for the exit, and hands back the config directory (and so the
    /// data beside it) for another start.
    pub fn stop(mut self, signal: nix::sys::signal::Signal) -> (ExitStatus, ConfigDir) {
        self.signal(signal);
        let status = self.wait_exit();
        let config = std::mem::replace(&mut self.config, ConfigDir::new(""));
        (status, config)
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal mcps");
    }

    /// Waits (up to 20 s) for the gateway to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait mcps") {
                return status;
            }
            assert!(Instant::now() < deadline, "mcps did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How much of the gateway's log a failed test shows.
const LOG_LINES_SHOWN: usize = 60;

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // A failed test shows what the gateway said last: a failure in CI is read from it.
        if std::thread::panicking() {
            // A poisoned lock still holds the log; a second panic here would abort the run.
            let log = self
                .log
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let lines: Vec<&str> = log.lines().collect();
            let last = &lines[lines.len().saturating_sub(LOG_LINES_SHOWN)..];
            eprintln!("mcps serve's last log lines:\n{}", last.join("\n"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over a std socket, so sync code needs no runtime.
pub fn blocking_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(authority).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// Processes (other than ourselves) whose environment holds `MARKER=<value>`.
pub fn processes_with_marker(value: &str) -> Vec<u32> {
    let needle = format!("MCPS_TEST_MARKER={value}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}
