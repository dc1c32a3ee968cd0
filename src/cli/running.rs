//! The gateway already running on a config's address, as `mcps tools`, `mcps call` and
//! `mcps check` reach it: its health, and stateless 2026-07-28 requests to `/mcp`.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::{config::Config, security::is_localhost_name};

/// How long a gateway has to answer the health check that finds it.
const FIND_WITHIN: Duration = Duration::from_secs(2);

/// The revision the requests speak: no session to open or close.
const REVISION: &str = "2026-07-28";

/// Where a client on this machine reaches the gateway the config describes: its
/// `server.listen`, with an unspecified address (`0.0.0.0`) meaning this machine.
pub fn base_url(config: &Config) -> anyhow::Result<String> {
    let mut listen = config.server.listen_addr()?;
    if listen.ip().is_unspecified() {
        listen.set_ip(match listen {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    Ok(format!("http://{listen}"))
}

/// An HTTP client for the gateway at `base`, on this machine when `here` (the config's own
/// address). The system's proxy settings (`HTTP_PROXY` and the like) are for reaching out:
/// a gateway on this machine, or at a loopback address, is reached directly, as Go's clients
/// do. Otherwise a container whose outbound traffic goes through a proxy would send its own
/// health check there, and be found unhealthy.
pub fn client_for(base: &str, here: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if here || on_loopback(base) {
        builder.no_proxy()
    } else {
        builder
    }
}

/// Whether `base` names a loopback address or `localhost`.
fn on_loopback(base: &str) -> bool {
    let Ok(url) = url::Url::parse(base) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => is_localhost_name(name),
        None => false,
    }
}

/// A gateway that answered at `base`.
pub struct RunningGateway {
    base: String,
    http: reqwest::Client,
    /// `MCPS_API_KEY`, for a gateway with `auth.enabled`.
    api_key: Option<String>,
}

impl RunningGateway {
    /// The MCPS.ONE gateway answering its health check at `base` (the config's address,
    /// [`base_url`]), if one does.
    pub async fn find(base: &str) -> Option<Self> {
        // reqwest is built without a TLS provider of its own (an https:// base needs one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = client_for(base, true).build().ok()?;
        let health: Value = http
            .get(format!("{base}/api/v1/system/health"))
            .timeout(FIND_WITHIN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        // Something else may listen there.
        health.get("upstreams")?.as_array()?;
        Some(Self {
            base: base.to_owned(),
            http,
            api_key: std::env::var("MCPS_API_KEY")
                .ok()
                .filter(|key| !key.is_empty()),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /api/v1/system/health`.
    pub async fn health(&self) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/system/health", self.base);
        let response = self.http.get(&url).send().await.context(url)?;
        Ok(response.json().await?)
    }

    /// Every tool `/mcp` (or `/mcp/<virtual server>`, `path`) lists, all pages.
    pub async fn tools(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(cursor) => json!({"cursor": cursor}),
                None => json!({}),
            };
            let result = self
                .request(path, "tools/list", None, params)
                .await?
                .map_err(|error| anyhow::anyhow!("tools/list was refused: {}", said(&error)))?;
            if let Some(page) = result["tools"].as_array() {
                tools.extend(page.iter().cloned());
            }
            match result["nextCursor"].as_str() {
                Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
                _ => return Ok(tools),
            }
        }
    }

    /// `tools/call` of `name`: its result, or the JSON-RPC error it was answered with.
    pub async fn call(&self, name: &str, arguments: Value) -> anyhow::Result<Result<Value, Value>> {
        let params = json!({"name": name, "arguments": arguments});
        let mcp_name = name
            .bytes()
            .all(|byte| byte.is_ascii_graphic() || byte == b' ');
        self.request("/mcp", "tools/call", mcp_name.then_some(name), params)
            .await
    }

    /// One stateless request to `path`: the answer's `result`, or its `error`.
    async fn request(
        &self,
        path: &str,
        method: &str,
        name: Option<&str>,
        mut params: Value,
    ) -> anyhow::Result<Result<Value, Value>> {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": REVISION,
            "io.modelcontextprotocol/clientInfo": {"name": "mcps", "version": env!("CARGO_PKG_VERSION")},
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", REVISION)
            .header("mcp-method", method)
            .body(body.to_string());
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.with_context(|| url.clone())?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!(
                "the gateway at {} needs an API key (auth.enabled): set MCPS_API_KEY, or use --local",
                self.base
            );
        }
        let streamed = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let text = response.text().await.with_context(|| url.clone())?;
        let answer = if streamed {
            answer_in_events(&text)
        } else {
            serde_json::from_str::<Value>(&text).ok()
        };
        match answer {
            Some(mut answer) if answer.get("error").is_some() => Ok(Err(answer["error"].take())),
            Some(mut answer) if answer.get("result").is_some() => Ok(Ok(answer["result"].take())),
            _ => bail!("{url} answered HTTP {status} with no JSON-RPC answer: {text:.300}"),
        }
    }
}

/// The JSON-RPC answer among an event stream's events (the notifications before it are the
/// call's log messages and progress, which a command line does not show).
fn answer_in_events(text: &str) -> Option<Value> {
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|data| data.strip_prefix(' ').unwrap_or(data))
                .collect();
            serde_json::from_str::<Value>(&data.join("\n")).ok()
        })
        .find(|message| message.get("id").is_some() && message.get("method").is_none())
}

/// A JSON-RPC error as a person reads it.
pub fn said(error: &Value) -> String {
    let message = error["message"].as_str().unwrap_or("no message");
    match error["code"].as_i64() {
        Some(code) => format!("{message} (JSON-RPC error {code})"),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_and_localhost_are_on_this_machine() {
        for base in [
            "http://127.0.0.1:8000",
            "http://127.9.9.9",
            "http://[::1]:8000",
            "http://localhost:8000",
            "http://LocalHost",
            "http://gateway.localhost",
        ] {
            assert!(on_loopback(base), "{base}");
        }
        for base in [
            "http://10.0.0.5:8000",
            "https://mcp.example.com",
            "not a url",
        ] {
            assert!(!on_loopback(base), "{base}");
        }
    }
}
