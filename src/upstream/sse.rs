//! A legacy HTTP+SSE upstream (protocol 2024-11-05): a GET opens an event stream whose first
//! event, `endpoint`, names the URL to POST messages to; every message from the server then
//! arrives as a `message` event on that stream.
//!
//! The endpoint must be on the same origin as the configured URL: a server cannot make the
//! gateway send its requests (and the configured headers) somewhere else. Events are capped
//! at the response size limit before they are buffered whole.

use std::{io, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::{Stream, StreamExt, stream::BoxStream};
use http::{HeaderMap, header};
use indexmap::IndexMap;
use reqwest::Url;
use rmcp::{
    RoleClient,
    model::{ClientJsonRpcMessage, ServerJsonRpcMessage},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use sse_stream::{Sse, SseStream};

use super::{
    connect::ConnectError,
    http::{client, header_map},
};
use crate::{error::with_causes, jsonrpc::unreadable_answer};

/// An rmcp transport over one legacy SSE connection.
pub struct SseTransport {
    events: Events,
    endpoint: Url,
    http: reqwest::Client,
    headers: HeaderMap,
}

/// Opens `upstream`'s event stream and waits for its `endpoint` event.
pub async fn connect(
    upstream: &str,
    url: &str,
    headers: &IndexMap<String, String>,
    max_event_bytes: usize,
) -> Result<SseTransport, ConnectError> {
    let base = Url::parse(url).map_err(|error| format!("invalid URL: {error}"))?;
    let headers = header_map(headers)?;
    // The connection's own jar: a balancer's cookie set on the stream goes on its POSTs.
    let http = client(upstream, url, Arc::default())?;
    let response = http
        .get(base.clone())
        .headers(headers.clone())
        .header(header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(|error| format!("cannot open the SSE stream: {}", with_causes(&error)))?;
    // Where a redirect within the origin led: the endpoint is named relative to it.
    let base = response.url().clone();
    let status = response.status();
    if !status.is_success() {
        return Err(ConnectError::answered(
            format!("the SSE stream answered {status}"),
            status.as_u16(),
            response.headers(),
        ));
    }
    let bytes = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(io::Error::other));
    let mut events = event_stream(bytes, max_event_bytes);
    let endpoint = loop {
        match events.next().await {
            Some(Ok(event)) if event.event.as_deref() == Some("endpoint") => {
                let data = event.data.unwrap_or_default();
                let endpoint = base
                    .join(data.trim())
                    .map_err(|error| format!("invalid endpoint {data:?}: {error}"))?;
                if endpoint.origin() != base.origin() {
                    return Err(format!(
                        "the server named an endpoint on another origin ({}); refused",
                        endpoint.origin().ascii_serialization()
                    )
                    .into());
                }
                break endpoint;
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(format!("bad SSE stream: {error}").into()),
            None => {
                return Err(
                    String::from("the SSE stream closed before naming its endpoint").into(),
                );
            }
        }
    };
    Ok(SseTransport {
        events,
        endpoint,
        http,
        headers,
    })
}

pub(crate) type Events = BoxStream<'static, Result<Sse, sse_stream::Error>>;

/// The events of an SSE body, none of them over `max_event_bytes`.
pub(crate) fn event_stream(
    bytes: impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    max_event_bytes: usize,
) -> Events {
    SseStream::from_bytes_stream(capped(bytes, max_event_bytes)).boxed()
}

/// The JSON-RPC message an event carries, if it is a `message` event (or has no type) whose
/// data is one; others are skipped, the malformed with a warning. An answer that cannot be
/// read becomes an error answer to its request (see [`unreadable_answer`]).
pub(crate) fn message_of(event: Sse) -> Option<ServerJsonRpcMessage> {
    if !matches!(event.event.as_deref(), None | Some("message")) {
        return None;
    }
    let data = event.data?;
    match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
        Ok(message) => Some(message),
        Err(error) => {
            let failed = unreadable_answer(data.as_bytes(), &error, "the upstream");
            tracing::warn!(%error, answer = failed.is_some(), "an SSE event that is not a JSON-RPC message");
            failed
        }
    }
}

/// Fails the stream when more than `max` bytes arrive without an event boundary (a blank
/// line), so no event is buffered beyond the limit.
fn capped(
    stream: impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    max: usize,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let mut since_boundary = 0usize;
    stream.map(move |chunk| {
        let chunk = chunk?;
        since_boundary = match last_boundary(&chunk) {
            Some(end) => chunk.len() - end,
            None => since_boundary + chunk.len(),
        };
        if since_boundary > max {
            return Err(io::Error::other(format!(
                "an SSE event exceeds {max} bytes"
            )));
        }
        Ok(chunk)
    })
}

/// The offset just past the last blank line in `chunk`: a line feed that ends an empty line,
/// after `\n` or `\n\r`. (A blank line split across two chunks is not seen; that only delays
/// the reset of the count by one event.) Read back from the end one line feed at a time:
/// `memmem::rfind` would build its searcher on every chunk, which cost more than the search.
fn last_boundary(chunk: &[u8]) -> Option<usize> {
    let mut end = chunk.len();
    while let Some(at) = memchr::memrchr(b'\n', &chunk[..end]) {
        let line = &chunk[..at];
        if line.ends_with(b"\n") || line.ends_with(b"\n\r") {
            return Some(at + 1);
        }
        end = at;
    }
    None
}

/// How long one POST of a message may take.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

impl Transport<RoleClient> for SseTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let request = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .timeout(POST_TIMEOUT);
        async move {
            let body = serde_json::to_vec::<ClientJsonRpcMessage>(&item)?;
            let response = request.body(body).send().await.map_err(io::Error::other)?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(io::Error::other(format!(
                    "the upstream answered a message with {}",
                    response.status()
                )))
            }
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let event = match self.events.next().await? {
                Ok(event) => event,
                Err(error) => {
                    tracing::warn!(%error, "SSE stream failed");
                    return None;
                }
            };
            if let Some(message) = message_of(event) {
                return Some(message);
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // Dropping the event stream closes the GET; the server ends the session with it.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_are_found_with_either_line_ending() {
        assert_eq!(last_boundary(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(last_boundary(b"data: a\r\n\r\nda"), Some(11));
        assert_eq!(last_boundary(b"data: a\n"), None);
        assert_eq!(last_boundary(b"data: a\r\n"), None);
        assert_eq!(last_boundary(b"\n"), None);
        assert_eq!(last_boundary(b""), None);
        // The last of several, and one whose blank line ends the chunk.
        assert_eq!(last_boundary(b"data: a\n\ndata: b\n\nda"), Some(18));
        assert_eq!(last_boundary(b"data: a\n\ndata: b\r\n\r\n"), Some(20));
        // Line endings mixed, as the SSE format allows.
        assert_eq!(last_boundary(b"data: a\n\r\nx"), Some(10));
    }

    #[tokio::test]
    async fn an_event_over_the_cap_fails_the_stream() {
        let chunks: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"data: 12345")),
            Ok(Bytes::from_static(b"67890")),
        ];
        let mut capped = Box::pin(capped(futures::stream::iter(chunks), 12));
        assert!(capped.next().await.unwrap().is_ok());
        assert!(capped.next().await.unwrap().is_err());
    }
}
