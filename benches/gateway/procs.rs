//! The processes a benchmark runs (the gateway, the echo upstream) and what the kernel says
//! about them: CPU time used and resident memory.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// A binary of this workspace, built in release mode by `benches/run.sh`.
pub fn release_bin(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let direct = target.join("release").join(name);
    if direct.exists() {
        return direct;
    }
    let example = target.join("release").join("examples").join(name);
    assert!(
        example.exists(),
        "{} is missing: run the benchmark with `benches/run.sh`",
        example.display()
    );
    example
}

/// A child process, killed on drop.
pub struct Process {
    pub child: Child,
    pub _config: Option<tempfile::TempDir>,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu(&self) -> Duration {
        cpu_of(self.pid())
    }

    /// Resident set size in bytes.
    pub fn rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time of a process, from `/proc/<pid>/stat`.
pub fn cpu_of(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |n: usize| {
        fields
            .get(n)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = ticks(11) + ticks(12);
    // /proc reports in USER_HZ, which Linux fixes at 100 for user space.
    Duration::from_millis(ticks * 10)
}

/// CPU time of the children of process `pid` (nginx's workers).
pub fn children_cpu(pid: u32) -> Duration {
    children(pid).map(cpu_of).sum()
}

/// CPU time of gateway `pid`'s stdio upstreams: its children but its reaper (see
/// `src/upstream/reaper.rs`), which is the gateway's own.
pub fn upstreams_cpu(pid: u32) -> Duration {
    children_where(pid, |stat| !stat.contains("(mcps-reaper)"))
        .map(cpu_of)
        .sum()
}

/// The pids of the children of process `pid`.
pub fn children(pid: u32) -> impl Iterator<Item = u32> {
    children_where(pid, |_| true)
}

/// The pids of the children of process `pid` whose `/proc/<pid>/stat` line passes `keep`.
fn children_where(pid: u32, keep: impl Fn(&str) -> bool) -> impl Iterator<Item = u32> {
    processes()
        .filter(move |(_, stat)| parent_of(stat) == Some(pid) && keep(stat))
        .map(|(child, _)| child)
}

/// Every process's pid and `/proc/<pid>/stat` line.
pub fn processes() -> impl Iterator<Item = (u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            Some((
                pid,
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?,
            ))
        })
}

/// The parent pid in a `/proc/<pid>/stat` line.
fn parent_of(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Starts `command` and waits for the stdout or stderr line that contains `marker`,
/// returning the process and that line.
pub fn start_until(mut command: Command, marker: &str) -> (Process, String) {
    command.stdin(Stdio::null());
    command.stdout(Stdio::piped());
    command.stderr(Stdio::piped());
    let mut child = command.spawn().expect("start a benchmark process");
    let (found, line) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let found = found.clone();
        let marker = marker.to_owned();
        std::thread::spawn(move || {
            // Keep reading to the end, so the process never blocks on a full pipe.
            for text in BufReader::new(stream).lines().map_while(Result::ok) {
                if text.contains(&marker) {
                    let _ = found.send(text);
                }
            }
        });
    }
    let line = line
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("no {marker:?} from {command:?}"));
    (
        Process {
            child,
            _config: None,
        },
        line,
    )
}

/// A free loopback port (released again; taken by the next process to bind it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// Starts `command` and waits until something accepts connections on `port`.
pub fn start_listening(mut command: Command, port: u16) -> Process {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = command.spawn().expect("start a benchmark process");
    let process = Process {
        child,
        _config: None,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{command:?} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    process
}

/// The echo upstream over streamable HTTP and its URL.
pub fn echo_over_http() -> (Process, String) {
    let mut command = Command::new(release_bin("echo_upstream"));
    command.args(["--http", "0"]);
    let (process, line) = start_until(command, "listening on ");
    let url = line
        .split("listening on ")
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_owned();
    (process, url)
}

/// `mcps serve` on `yaml` (whose `server.listen` is chosen here) and its `/mcp` URL.
pub fn gateway(upstreams_yaml: &str) -> (Process, String) {
    gateway_with("", upstreams_yaml)
}

/// The same, with more top-level `settings` (YAML, each line ending in a newline).
pub fn gateway_with(settings: &str, upstreams_yaml: &str) -> (Process, String) {
    gateway_in(settings, upstreams_yaml, &[])
}

/// The same, with `env` set for the gateway's process.
pub fn gateway_in(settings: &str, upstreams_yaml: &str, env: &[(&str, &str)]) -> (Process, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("proxy.yaml");
    // Every client of the benchmark comes from one address: the per-address limits, which
    // keep one client from taking everything, are lifted to the global ones.
    let yaml = format!(
        "{settings}logging:\n  level: warn\nlimits:\n  max_sessions_per_peer: 10000\n  max_connections_per_peer: 10000\ntimeouts:\n  startup_secs: 120\nupstreams:\n{upstreams_yaml}"
    );
    std::fs::write(&config, yaml).expect("write the config");
    let mut command = Command::new(release_bin("mcps"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "-c"])
        .arg(&config)
        // The endpoint line is logged at info; the rest of the log stays at warn.
        .env("RUST_LOG", "warn,mcps::app=info")
        .envs(env.iter().copied());
    let (mut process, line) = start_until(command, "MCP endpoint: ");
    process._config = Some(dir);
    let url = line
        .split("MCP endpoint: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    (process, url)
}

/// The `upstreams:` entry of a stdio echo upstream named `name`.
pub fn echo_stdio_entry(name: &str) -> String {
    format!(
        "  {name}:\n    command: {:?}\n",
        release_bin("echo_upstream").display().to_string()
    )
}
