//! proxy.py (PyPI, pinned in `tests/requirements.txt`): a forward proxy of the kind
//! `HTTP_PROXY` and `HTTPS_PROXY` name. It relays plain requests named by their whole URL and
//! opens `CONNECT` tunnels, and here it asks for Basic credentials. Its one plugin of ours
//! (`tests/clients/proxy_ports.py`) takes the connections for ports nothing listens on to the
//! upstreams the test names by them, so an upstream answers only through the proxy.

use std::process::Command;

use super::{clients_dir, free_port, python, served::ServedUpstream};

/// The credentials the proxy asks for.
pub const USER: &str = "proxy-user";
pub const PASSWORD: &str = "proxy-secret";

/// proxy.py, stopped on drop.
pub struct ForwardProxy {
    _served: ServedUpstream,
    /// Its URL, with the credentials.
    url: String,
    /// Its URL, with a password it refuses.
    refused_url: String,
}

impl ForwardProxy {
    /// The proxy, taking each `(named, real)` port's connections to `real`.
    pub fn start(ports: &[(u16, u16)]) -> Self {
        Self::start_with(ports, false)
    }

    /// The same, spoken to in TLS (`https://`), with the tests' certificate for `localhost`
    /// (`tests/tls.sh`).
    pub fn start_in_tls(ports: &[(u16, u16)]) -> Self {
        Self::start_with(ports, true)
    }

    fn start_with(ports: &[(u16, u16)], in_tls: bool) -> Self {
        let ports: Vec<String> = ports
            .iter()
            .map(|(named, real)| format!("{named}:{real}"))
            .collect();
        let served = ServedUpstream::start("proxy.py", |port| {
            let mut command = Command::new(python());
            command
                .args(["-m", "proxy", "--hostname", "127.0.0.1"])
                .args(["--port", &port.to_string()])
                .args(["--basic-auth", &format!("{USER}:{PASSWORD}")])
                .args(["--num-acceptors", "1", "--num-workers", "1"])
                .args(["--plugins", "proxy_ports.PortsOnlyTheProxyKnows"])
                .env("PYTHONPATH", clients_dir())
                .env("MCPS_TEST_PROXY_PORTS", ports.join(","));
            if in_tls {
                let file = |name: &str| {
                    std::env::var(name).unwrap_or_else(|_| {
                        panic!("{name} is not set: run the tests with `tests/run.sh`, or `source tests/tls.sh` first")
                    })
                };
                command
                    .args(["--cert-file", &file("MCPS_TEST_TLS_CERT")])
                    .args(["--key-file", &file("MCPS_TEST_TLS_KEY")]);
            }
            command
        });
        let at = match in_tls {
            true => format!("https://{{}}@localhost:{}", served.port),
            false => format!("http://{{}}@127.0.0.1:{}", served.port),
        };
        let url = at.replace("{}", &format!("{USER}:{PASSWORD}"));
        let refused_url = at.replace("{}", &format!("{USER}:not-{PASSWORD}"));
        Self {
            _served: served,
            url,
            refused_url,
        }
    }

    /// A gateway's environment that sends every request through the proxy, with its
    /// credentials; `NO_PROXY` empty, so that loopback goes through it too.
    pub fn environment(&self) -> Vec<(&'static str, &str)> {
        environment_for(&self.url)
    }

    /// The same, with a password the proxy refuses.
    pub fn refused_environment(&self) -> Vec<(&'static str, &str)> {
        environment_for(&self.refused_url)
    }
}

fn environment_for(url: &str) -> Vec<(&'static str, &str)> {
    let mut environment = Vec::new();
    for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
        environment.push((name, url));
    }
    for name in ["ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"] {
        environment.push((name, ""));
    }
    environment
}

/// A port nothing listens on, for an upstream only the proxy reaches: `(it, real)` for
/// [`ForwardProxy::start`].
pub fn named_only_to_the_proxy(real: u16) -> (u16, u16) {
    (free_port(), real)
}
