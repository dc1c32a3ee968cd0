//! nginx (`tests/nginx.sh`) in front of several gateways: plain round robin, no stickiness,
//! as a team would run replicas.

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// What a `location` passing MCP's streamable HTTP to its `proxy_pass` needs besides:
/// kept-alive connections to the backend, the client's `Host`, and event streams that go
/// through as they come.
pub const PASS_MCP: &str = "            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_buffering off;
            proxy_read_timeout 300s;
";

/// What a `location` passing a WebSocket's upgrade to its `proxy_pass` needs besides: the
/// upgrade's own headers, the client's `Host`, and connections that stay open while idle.
pub const PASS_WEBSOCKET: &str = "            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection \"upgrade\";
            proxy_set_header Host $http_host;
            proxy_read_timeout 300s;
";

/// An nginx process balancing over some gateways, stopped on drop.
pub struct Balancer {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Balancer {
    /// Round robin over `backends` (`host:port` each).
    pub fn start(backends: &[String]) -> Self {
        let servers: String = backends
            .iter()
            .map(|backend| format!("        server {backend};\n"))
            .collect();
        Self::http(|port| {
            format!(
                "    upstream gateways {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
{PASS_MCP}        }}
    }}
"
            )
        })
    }

    /// nginx with one worker, no access log, and the `http` block's contents that `blocks`
    /// makes for a free port (upstreams, servers).
    pub fn http(blocks: impl FnOnce(u16) -> String) -> Self {
        Self::run(|port| {
            format!(
                "worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{}}}
",
                blocks(port)
            )
        })
    }

    /// nginx on the config `config` makes for a free port; what a test runs beside it (its
    /// pid, logs and temporary files) goes in a directory of its own.
    pub fn run(config: impl FnOnce(u16) -> String) -> Self {
        let nginx = std::env::var("MCPS_TEST_NGINX").expect(
            "MCPS_TEST_NGINX is not set: run the tests with `tests/run.sh`, or `source tests/nginx.sh` first",
        );
        let dir = tempfile::tempdir().expect("a directory for nginx");
        let port = super::free_port();
        let temp_paths = "http {
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;";
        let config = config(port).replacen("http {", temp_paths, 1);
        // As root nginx would hand its workers to `nobody`, who cannot write here.
        let root = std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|status| status.lines().any(|line| line.starts_with("Uid:\t0\t")));
        let user = if root { "user root; " } else { "" };
        std::fs::write(dir.path().join("nginx.conf"), config).expect("write nginx.conf");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .args(["-c", "nginx.conf", "-g"])
            .arg(format!(
                "{user}pid nginx.pid; error_log error.log warn; daemon off;"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            _dir: dir,
            port,
        }
    }

    /// The balancer's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // SIGTERM: nginx's fast shutdown, workers included.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// The host and port of `url`, as nginx names a backend (`server`, `proxy_pass`).
pub fn backend(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{url:?} is not a URL with a host"))
        .to_owned()
}
