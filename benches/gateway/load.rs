//! The load generator: raw JSON-RPC `tools/call` over streamable HTTP, in either protocol
//! era, from many concurrent clients, each on its own keep-alive connection.

use std::time::{Duration, Instant};

use reqwest::{Client, header::HeaderMap};
use serde_json::{Value, json};

/// The protocol era a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// `initialize`, then calls on an `Mcp-Session-Id` session.
    Legacy,
    /// 2026-07-28: no handshake; every request carries its own `_meta`.
    Modern,
}

impl Era {
    pub fn label(self) -> &'static str {
        match self {
            Self::Legacy => "2025-11-25",
            Self::Modern => "2026-07-28",
        }
    }
}

/// What one load run measured.
pub struct Measured {
    pub calls: usize,
    pub errors: usize,
    pub wall: Duration,
    /// Every call's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Measured {
    /// The figures of a run that took `wall` and timed `latencies` (in any order).
    pub fn new(mut latencies: Vec<Duration>, errors: usize, wall: Duration) -> Self {
        latencies.sort_unstable();
        Self {
            calls: latencies.len(),
            errors,
            wall,
            latencies,
        }
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[at]
    }

    pub fn per_second(&self) -> f64 {
        self.calls as f64 / self.wall.as_secs_f64()
    }
}

/// One client: a connection and, in the session era, a session.
pub struct McpClient {
    http: Client,
    url: String,
    era: Era,
    session: Option<String>,
    next_id: u64,
    /// Whether a 2026-07-28 call also sends its `message` in `Mcp-Param-Message` (SEP-2243),
    /// as a client must when the tool marks it (the echo upstream's `--header-argument`).
    message_in_header: bool,
}

/// The `message` every call of the load sends.
const MESSAGE: &str = "hello from the benchmark";

fn http_client() -> Client {
    // reqwest is built without a TLS provider of its own (plain HTTP here in any case).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1)
        .http1_only()
        .build()
        .expect("HTTP client")
}

pub fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "mcps-bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

impl McpClient {
    /// Connects; a session-era client performs the handshake.
    pub async fn connect(url: &str, era: Era) -> Result<Self, String> {
        let mut client = Self {
            http: http_client(),
            url: url.to_owned(),
            era,
            session: None,
            next_id: 1,
            message_in_header: false,
        };
        if era == Era::Legacy {
            let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "mcps-bench", "version": "0"}}});
            let (headers, body) = client.post(&init, "initialize", None).await?;
            if !body.contains("\"result\"") {
                return Err(format!("initialize failed: {body}"));
            }
            client.session = headers
                .get("mcp-session-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            client
                .post(&initialized, "notifications/initialized", None)
                .await?;
        }
        Ok(client)
    }

    /// The session's id, in the session era.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    async fn post(
        &self,
        message: &Value,
        method: &str,
        name: Option<&str>,
    ) -> Result<(HeaderMap, String), String> {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        request = match self.era {
            Era::Legacy => request.header("mcp-protocol-version", "2025-11-25"),
            Era::Modern => {
                let request = request
                    .header("mcp-protocol-version", "2026-07-28")
                    .header("mcp-method", method);
                let request = match name {
                    Some(name) => request.header("mcp-name", name),
                    None => request,
                };
                if self.message_in_header && method == "tools/call" {
                    request.header("mcp-param-message", MESSAGE)
                } else {
                    request
                }
            }
        };
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        let response = request
            .body(message.to_string())
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|error| error.to_string())?;
        Ok((headers, body))
    }

    /// Opens the session's GET stream, where a client listens for what the server sends
    /// outside requests (as the SDKs' clients do); it stays open while the answer is kept.
    pub async fn listen(&self) -> Result<reqwest::Response, String> {
        let mut request = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.map_err(|error| error.to_string())?;
        if !response.status().is_success() {
            return Err(format!("GET stream: {}", response.status()));
        }
        Ok(response)
    }

    /// Sends a request and returns the body of its answer (JSON or SSE).
    pub async fn request(
        &mut self,
        method: &str,
        name: Option<&str>,
        mut params: Value,
    ) -> Result<String, String> {
        if self.era == Era::Modern {
            params["_meta"] = modern_meta();
        }
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let (_, body) = self.post(&message, method, name).await?;
        if body.contains("\"result\"") {
            Ok(body)
        } else {
            Err(body)
        }
    }

    pub async fn call(&mut self, tool: &str, arguments: &Value) -> Result<String, String> {
        let params = json!({"name": tool, "arguments": arguments});
        self.request("tools/call", Some(tool), params).await
    }
}

/// `clients` concurrent clients each make `calls` calls of `tool` (after a short warm-up).
pub async fn run(url: &str, era: Era, tool: &str, clients: usize, calls: usize) -> Measured {
    run_with(url, era, tool, clients, calls, CallShape::Plain).await
}

/// How a load's calls are made beside the plain way.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CallShape {
    Plain,
    /// The `message` sent in a header too (SEP-2243).
    MessageInHeader,
    /// Through the tool search's `call_tool`, which names the tool.
    ViaCallTool,
    /// The tool search's `search_tools`, for the tool: answered by the gateway itself.
    SearchTools,
}

/// [`run`], with the calls made as `shape` says.
pub async fn run_with(
    url: &str,
    era: Era,
    tool: &str,
    clients: usize,
    calls: usize,
    shape: CallShape,
) -> Measured {
    let (tool, arguments) = match shape {
        CallShape::ViaCallTool => (
            "call_tool",
            json!({"name": tool, "arguments": {"message": MESSAGE}}),
        ),
        CallShape::SearchTools => ("search_tools", json!({"query": tool})),
        _ => (tool, json!({"message": MESSAGE})),
    };
    let message_in_header = shape == CallShape::MessageInHeader;
    let mut connected = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut client = McpClient::connect(url, era).await.expect("connect");
        client.message_in_header = message_in_header;
        for _ in 0..5 {
            client.call(tool, &arguments).await.expect("warm-up call");
        }
        connected.push(client);
    }
    let started = Instant::now();
    let tasks: Vec<_> = connected
        .into_iter()
        .map(|mut client| {
            let arguments = arguments.clone();
            let tool = tool.to_owned();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(calls);
                let mut errors = 0;
                for _ in 0..calls {
                    let sent = Instant::now();
                    match client.call(&tool, &arguments).await {
                        Ok(_) => latencies.push(sent.elapsed()),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(clients * calls);
    let mut errors = 0;
    for task in tasks {
        let (mine, failed) = task.await.expect("client task");
        latencies.extend(mine);
        errors += failed;
    }
    Measured::new(latencies, errors, started.elapsed())
}
