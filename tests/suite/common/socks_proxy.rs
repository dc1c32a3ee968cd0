//! pproxy (PyPI, pinned in `tests/requirements.txt`) as a SOCKS proxy of the kind `ALL_PROXY`
//! names. It takes every connection it is asked for to one upstream (`-r tunnel://`), so an
//! upstream named by a port nothing listens on answers only through it; it logs each
//! connection (`-v`) to a file the test reads.

use std::{path::PathBuf, process::Command};

use super::{python, served::ServedUpstream};

/// The credentials a SOCKS5 proxy asks for.
pub const USER: &str = "socks-user";
pub const PASSWORD: &str = "socks-secret";

/// pproxy, stopped on drop.
pub struct SocksProxy {
    served: ServedUpstream,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl SocksProxy {
    /// A SOCKS proxy (`socks5`, asking for [`USER`] and [`PASSWORD`]; or `socks4`, which has
    /// no passwords) that takes every connection to port `to` on loopback.
    pub fn start(version: &str, to: u16) -> Self {
        let dir = tempfile::tempdir().expect("a directory for the proxy's log");
        let log = dir.path().join("pproxy.log");
        let served = ServedUpstream::start_writing("pproxy", Some(&log), |port| {
            let mut listen = format!("{version}://127.0.0.1:{port}");
            if version == "socks5" {
                listen.push_str(&format!("#{USER}:{PASSWORD}"));
            }
            let mut command = Command::new(python());
            command
                .args(["-m", "pproxy", "-l", &listen])
                .args(["-r", &format!("tunnel://127.0.0.1:{to}")])
                // Asks every connection for the password: by default, an address that gave
                // it once is let through for 30 days.
                .args(["--auth", "0", "-v"])
                .env("PYTHONUNBUFFERED", "1");
            command
        });
        Self {
            served,
            log,
            _dir: dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.served.port
    }

    /// What the proxy logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A gateway's environment that sends every request through the SOCKS proxy at `url`, and
/// nothing past it.
pub fn environment(url: &str) -> Vec<(&'static str, &str)> {
    let mut environment = Vec::new();
    for name in ["ALL_PROXY", "all_proxy"] {
        environment.push((name, url));
    }
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        environment.push((name, ""));
    }
    environment
}
