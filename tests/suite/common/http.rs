//! Raw JSON-RPC over streamable HTTP, for tests that need to send what no SDK would send.

use std::sync::{Arc, Mutex};

use reqwest::{Client, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

/// An HTTP client for tests. reqwest is built without a TLS provider of its own (the gateway
/// brings ring), so one must be installed before any client is built, even a plain-HTTP one.
pub fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new()
}

/// The same, with its connections from `address`: any of 127.0.0.0/8 reaches a gateway on
/// 127.0.0.1, so a test can play several clients that the gateway tells apart by address.
pub fn client_from(address: &str) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let address: std::net::IpAddr = address.parse().expect("an IP address");
    Client::builder()
        .local_address(address)
        .build()
        .expect("an HTTP client")
}

/// The same, opening a new connection for every request, as a health prober does.
pub fn client_without_reuse() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client")
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The JSON-RPC message in the body (plain JSON, or the last `data:` event of an SSE body).
    pub fn message(&self) -> Value {
        let is_sse = self
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if is_sse {
            let data = self
                .body
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim)
                .rfind(|data| !data.is_empty())
                .unwrap_or_else(|| panic!("no data event in {}", self.body));
            serde_json::from_str(data).unwrap_or_else(|_| panic!("bad event {data}"))
        } else {
            serde_json::from_str(&self.body)
                .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
        }
    }

    /// The JSON-RPC error code, if the message is an error.
    pub fn error_code(&self) -> Option<i64> {
        self.message()["error"]["code"].as_i64()
    }
}

/// The JSON document at `url`.
pub async fn get_json(url: &str) -> Value {
    client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: {error}"))
        .json()
        .await
        .unwrap_or_else(|error| panic!("GET {url}: not JSON: {error}"))
}

/// The gateway's `/metrics` at `base`, as text (without auth).
pub async fn metrics_text(base: &str) -> String {
    client()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics' text")
}

/// A 2026-07-28 POST of `method` with the headers that revision asks for (`Mcp-Name` when
/// `name` is given); the body is the caller's.
pub fn modern_post(url: &str, method: &str, name: Option<&str>) -> reqwest::RequestBuilder {
    let request = client()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    match name {
        Some(name) => request.header("mcp-name", name),
        None => request,
    }
}

/// A 2026-07-28 request of `method` (with `Mcp-Name` `name`) by the holder of API key `key`,
/// whose client declares `capabilities`, on a connection of its own that closes with the
/// answer (the client leaves); the JSON-RPC message it gets back.
pub async fn modern_request(
    url: &str,
    key: &str,
    method: &str,
    name: Option<&str>,
    mut params: Value,
    capabilities: Value,
) -> Value {
    params["_meta"] = modern_meta("probe", capabilities);
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let mut request = client_without_reuse()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method)
        .bearer_auth(key)
        .json(&body);
    if let Some(name) = name {
        request = request.header("mcp-name", name);
    }
    let text = request
        .send()
        .await
        .expect("POST")
        .text()
        .await
        .expect("the answer");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method}: not JSON: {text}"))
}

/// The `_meta` of a 2026-07-28 request from client `name`, which declares `capabilities`.
pub fn modern_meta(name: &str, capabilities: Value) -> Value {
    serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": name, "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": capabilities
    })
}

/// A 2026-07-28 `tools/call` of `tool` with `arguments`, as a hyper request to `url`: for
/// tests that choose the connection it goes on (HTTP/2, one kept open).
pub fn modern_tool_call_request(
    url: &str,
    tool: &str,
    arguments: Value,
) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "_meta": modern_meta("hyper", json!({})),
        "name": tool, "arguments": arguments}});
    hyper::Request::post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap()
}

/// A 2026-07-28 `tools/call` of `name` at `mcp_url` by a client that declares elicitation,
/// with `extra` parameters beside the name (a retry's `requestState` and `inputResponses`);
/// the JSON-RPC message it gets back.
pub async fn modern_tool_call(mcp_url: &str, name: &str, extra: Value) -> Value {
    let mut params = serde_json::json!({
        "_meta": modern_meta("raw-modern", serde_json::json!({"elicitation": {}})),
        "name": name,
        "arguments": {}
    });
    if let (Some(params), Some(extra)) = (params.as_object_mut(), extra.as_object()) {
        params.extend(extra.clone());
    }
    modern_message(mcp_url, "tools/call", Some(name), &params).await
}

/// A 2026-07-28 request of `method` with `params` (its `_meta` among them) at `mcp_url`,
/// naming `name` in `Mcp-Name`; the JSON-RPC message it gets back.
pub async fn modern_message(
    mcp_url: &str,
    method: &str,
    name: Option<&str>,
    params: &Value,
) -> Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = modern_post(mcp_url, method, name)
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
    .message()
}

/// Makes `count` calls of `fx__echo` (the fixture upstream's echo, named `fx`) at `mcp_url`,
/// in a session of their own; each must answer a result.
pub async fn call_echo(mcp_url: &str, count: u64) {
    let mut session = RawSession::open(mcp_url).await;
    for n in 0..count {
        let reply = session.call("fx__echo", serde_json::json!({"n": n})).await;
        assert!(reply["result"].is_object(), "{reply}");
    }
}

/// The sum of the samples whose line starts with `name` in the `/metrics` of the gateway at
/// `base` (asked with `key` when auth is on).
pub async fn metric(base: &str, key: Option<&str>, name: &str) -> u64 {
    let mut request = client().get(format!("{base}/metrics"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let text = request
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A session-era (2025-11-25) client session over raw HTTP.
pub struct RawSession {
    pub client: Client,
    pub url: String,
    pub session_id: Option<String>,
    pub next_id: u64,
    /// Sent with every request (e.g. `Authorization`).
    pub headers: Vec<(String, String)>,
}

impl RawSession {
    /// Another handle on the same session (for a request in flight on another task).
    pub fn handle(&self) -> Self {
        Self {
            client: self.client.clone(),
            url: self.url.clone(),
            session_id: self.session_id.clone(),
            next_id: self.next_id + 1000,
            headers: self.headers.clone(),
        }
    }

    /// `initialize` + `notifications/initialized`.
    pub async fn open(url: &str) -> Self {
        Self::open_with(url, &[]).await
    }

    /// `initialize` + `notifications/initialized`, sending `headers` with every request.
    pub async fn open_with(url: &str, headers: &[(&str, &str)]) -> Self {
        Self::open_on(client(), url, headers).await
    }

    /// The same over `client` (one bound to a source address, say).
    pub async fn open_on(client: Client, url: &str, headers: &[(&str, &str)]) -> Self {
        Self::open_declaring(client, url, headers, json!({})).await
    }

    /// The same, declaring `capabilities` at `initialize`.
    pub async fn open_declaring(
        client: Client,
        url: &str,
        headers: &[(&str, &str)],
        capabilities: Value,
    ) -> Self {
        let mut session = Self {
            client,
            url: url.to_owned(),
            session_id: None,
            next_id: 1,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        };
        let reply = session
            .post_json(&json!({
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": capabilities,
                    "clientInfo": {"name": "raw-test", "version": "0"}
                }
            }))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "initialize: {}", reply.body);
        session.session_id = reply
            .headers
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(session.session_id.is_some(), "no session id");
        let reply = session
            .post_json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert!(reply.status.is_success(), "initialized: {}", reply.status);
        session
    }

    /// `request` in this session: its id and the protocol version it speaks.
    fn in_session(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .header(
                "mcp-session-id",
                self.session_id.clone().expect("a session"),
            )
            .header("mcp-protocol-version", "2025-11-25")
    }

    /// Ends the session (`DELETE`), checking the gateway agreed.
    pub async fn close(&self) {
        let closed = self
            .in_session(self.client.delete(&self.url))
            .send()
            .await
            .expect("DELETE");
        assert!(closed.status().is_success(), "{}", closed.status());
    }

    /// Opens the session's GET stream (server → client messages) and collects it as text.
    pub async fn open_stream(&self) -> Arc<Mutex<String>> {
        let mut request = self.client.get(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let stream = self
            .in_session(request.header("accept", "text/event-stream"))
            .send()
            .await
            .expect("GET stream");
        assert!(
            stream.status().is_success(),
            "GET stream: {}",
            stream.status()
        );
        collect_stream(stream)
    }

    /// POSTs raw bytes with the session's headers.
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>, extra: &[(&str, &str)]) -> Reply {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25");
        if let Some(id) = &self.session_id {
            request = request.header("mcp-session-id", id);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.body(body).send().await.expect("POST /mcp");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        }
    }

    pub async fn post_json(&self, message: &Value) -> Reply {
        self.post_raw(message.to_string(), &[]).await
    }

    /// Sends a request and returns the reply.
    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        self.post_json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await
    }

    /// `tools/list`, every page, as exposed names.
    pub async fn tool_names(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let params = match &cursor {
                Some(cursor) => json!({"cursor": cursor}),
                None => json!({}),
            };
            let message = self.request("tools/list", params).await.message();
            let result = &message["result"];
            assert!(result.is_object(), "tools/list failed: {message}");
            for tool in result["tools"].as_array().expect("tools") {
                names.push(tool["name"].as_str().expect("name").to_owned());
            }
            match result["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return names,
            }
        }
    }

    /// `tools/call`; returns the whole JSON-RPC message.
    pub async fn call(&mut self, name: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
            .await
            .message()
    }
}

/// Collects a streaming response body as text in the background.
pub fn collect_stream(mut response: reqwest::Response) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    tokio::spawn(async move {
        while let Ok(Some(chunk)) = response.chunk().await {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    text
}

pub async fn wait_for(text: &Arc<Mutex<String>>, needle: &str, count: usize) {
    super::wait_logged(|| text.lock().unwrap().clone(), needle, count).await;
}
