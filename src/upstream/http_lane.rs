//! The gateway's own lane to a streamable HTTP upstream that speaks 2026-07-28.
//!
//! That revision has no session: each request is a POST that carries everything, answered by
//! plain JSON or by an event stream that ends with the answer. So a call needs no connection
//! state beyond the HTTP client's pool, and the lane sends it itself, with the arguments and
//! the result as JSON text, instead of going through rmcp's client task. It carries the
//! headers the revision asks for (`MCP-Protocol-Version`, SEP-2243's `Mcp-Method` and
//! `Mcp-Name`) and the operator's configured ones. The router sends only what needs nothing
//! else on the lane: no progress, no log messages, no argument in a header; a call dropped
//! before its answer closes its request, which is how this revision cancels.

use std::{
    io,
    sync::atomic::{AtomicU64, Ordering},
};

use futures::StreamExt;
use http::{HeaderMap, HeaderValue, header};

use super::{
    http::{client, header_map},
    lane::{Answer, LaneError, read_answer, request_text},
    sse::event_stream,
};
use crate::config::UpstreamConfig;

/// One 2026-07-28 streamable HTTP upstream, for the lane's calls.
pub struct HttpLane {
    upstream: String,
    http: reqwest::Client,
    url: String,
    /// The configured headers and the revision's.
    headers: HeaderMap,
    max_response_bytes: usize,
    next: AtomicU64,
}

impl std::fmt::Debug for HttpLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the headers: they may hold secrets.
        f.debug_struct("HttpLane").field("url", &self.url).finish()
    }
}

impl HttpLane {
    /// The lane to `config`'s URL, speaking `version`.
    pub fn new(
        name: &str,
        config: &UpstreamConfig,
        version: &str,
        max_response_bytes: usize,
    ) -> Result<Self, String> {
        let url = config.url.clone().ok_or("no URL")?;
        let mut headers = header_map(&config.headers)?;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        let version = HeaderValue::from_str(version).map_err(|error| error.to_string())?;
        headers.insert("mcp-protocol-version", version);
        Ok(Self {
            upstream: name.to_owned(),
            http: client()?,
            url,
            headers,
            max_response_bytes,
            next: AtomicU64::new(1),
        })
    }

    /// Whether `name` can go in an `Mcp-Name` header as it is (visible ASCII); others would
    /// need SEP-2243's Base64 form, which rmcp's client writes.
    pub fn can_name(name: &str) -> bool {
        name.bytes()
            .all(|byte| byte.is_ascii_graphic() || byte == b' ')
    }

    /// POSTs `method` with `params` (an object's text) and waits for the answer.
    pub async fn post(
        &self,
        method: &str,
        name: Option<&str>,
        params: &str,
    ) -> Result<Answer, LaneError> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let body = request_text(number, method, params).map_err(LaneError::Write)?;
        let mut request = self
            .http
            .post(&self.url)
            .headers(self.headers.clone())
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|error| LaneError::Http(cannot_send(&error)))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let bytes = response
            .bytes_stream()
            .map(|chunk| chunk.map_err(io::Error::other));
        if content_type.starts_with("text/event-stream") {
            let mut events = event_stream(bytes, self.max_response_bytes);
            while let Some(event) = events.next().await {
                let event = event.map_err(|error| LaneError::Http(error.to_string()))?;
                if !matches!(event.event.as_deref(), None | Some("message")) {
                    continue;
                }
                // Progress and log messages were not asked for; the answer ends the stream.
                if let Some(data) = event.data
                    && let Some((ours, answer)) = read_answer(data.as_bytes(), &self.upstream)
                    && ours == number
                {
                    return Ok(answer);
                }
            }
            return Err(LaneError::Http(format!(
                "its event stream ended without an answer (HTTP {status})"
            )));
        }
        let body = read_capped(bytes, self.max_response_bytes).await?;
        match read_answer(&body, &self.upstream) {
            Some((ours, answer)) if ours == number => Ok(answer),
            _ => Err(LaneError::Http(format!(
                "it answered HTTP {status} without a JSON-RPC answer to the request"
            ))),
        }
    }
}

/// The whole body, refused past `max` bytes.
async fn read_capped(
    mut bytes: impl futures::Stream<Item = io::Result<bytes::Bytes>> + Unpin,
    max: usize,
) -> Result<Vec<u8>, LaneError> {
    let mut body = Vec::new();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|error| LaneError::Http(error.to_string()))?;
        if body.len() + chunk.len() > max {
            return Err(LaneError::Http(format!(
                "its answer is longer than limits.max_line_bytes ({max} bytes)"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Why a request could not be sent: `error` by its causes ("error sending request for url
/// (…): client error (Connect): tcp connect error: Connection refused") rather than by a
/// wrapper whose text names Rust types.
pub fn cannot_send(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("cannot send to it: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        // An error may repeat its cause in its own text; say each once.
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
