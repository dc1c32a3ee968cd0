//! A streamable HTTP upstream (both protocol eras; rmcp's client negotiates).
//!
//! The transport runs over [`RelatingClient`], reqwest with one addition: it notes which of
//! our requests each request from the upstream arrived under. A streamable HTTP server sends
//! the requests a call causes (sampling, elicitation) on that call's own response stream, and
//! that is what lets the gateway hand them to the right client on a shared connection.

use std::{borrow::Cow, collections::HashMap, sync::Arc, time::Duration};

use arc_swap::ArcSwapOption;
use futures::{StreamExt, stream::BoxStream};
use http::{HeaderMap, HeaderName, HeaderValue};
use indexmap::IndexMap;
use rmcp::{
    model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, RequestId},
    transport::{
        StreamableHttpClientTransport,
        streamable_http_client::{
            SseError, StreamableHttpClient, StreamableHttpClientTransportConfig,
            StreamableHttpError, StreamableHttpPostResponse, StreamableHttpResponseLimits,
        },
    },
};
use serde::Deserialize;
use sse_stream::Sse;

use super::{UpstreamAuth, callers::Callers, cookies::Cookies, redirects};

/// The rmcp transport over our client.
pub type HttpTransport = StreamableHttpClientTransport<RelatingClient>;

/// The configured headers of an upstream, marked sensitive so they are never logged.
/// `headers` were validated with the config; failures here name the header but never its
/// value (it is usually a secret).
pub fn header_map(headers: &IndexMap<String, String>) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let mut value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// How long a connection to an upstream is kept idle for the next request, when the upstream
/// does not say: less than the 5 s after which Node's, uvicorn's and Apache's servers close an
/// idle one. A server that closes a connection just as a request goes out on it never reads
/// the request, and the client learns only that the connection closed before an answer: a
/// failed call that the upstream never saw. undici, Node's own client, keeps 4 s for the same
/// reason.
pub const KEEP_IDLE: Duration = Duration::from_secs(4);

/// The HTTP client of `upstream`'s HTTP-based transports to `url`, keeping `cookies`.
pub fn client(upstream: &str, url: &str, cookies: Arc<Cookies>) -> Result<reqwest::Client, String> {
    use_our_tls_provider();
    let mut builder = reqwest::Client::builder();
    if url
        .parse()
        .is_ok_and(|url| super::http_lane::relayed_by_a_proxy(&url))
    {
        builder = builder.http1_title_case_headers();
    }
    builder
        // Nagle + delayed ACK turned 1 ms calls into 40 ms ones in our measurements.
        .tcp_nodelay(true)
        // reqwest's 90 s would outlast most servers' keep-alive (see `KEEP_IDLE`).
        .pool_idle_timeout(KEEP_IDLE)
        // Within the upstream's origin only: see `redirects`.
        .redirect(redirects::policy(upstream))
        .cookie_provider(cookies)
        .build()
        .map_err(|error| format!("cannot build HTTP client: {error}"))
}

/// reqwest is built without a TLS provider of its own; ring is ours, installed before any
/// client is built (a client built without one panics). Installing is idempotent: a second
/// call finds one in place and changes nothing.
pub fn use_our_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What keeps a connection's requests with the server, and the instance of it, that holds
/// their session: the session its `initialize` opened, as the server named it in
/// `Mcp-Session-Id`, and the cookies the server set (a load balancer's, see [`Cookies`]).
/// rmcp's client keeps the id to itself; the transport notes it here, again whenever rmcp
/// opens a new session for an expired one, for the gateway's own lane (see
/// [`super::http_lane`]), which sends the same cookies. No id until then, nor for a server
/// that keeps no sessions.
#[derive(Default, Debug)]
pub struct Affinity {
    session: ArcSwapOption<String>,
    cookies: Arc<Cookies>,
}

impl Affinity {
    /// The current session's id, if the server gave one.
    pub fn session_id(&self) -> Option<Arc<String>> {
        self.session.load_full()
    }

    fn set_session(&self, id: Option<&String>) {
        self.session.store(id.map(|id| Arc::new(id.clone())));
    }

    /// The cookies the server set on this connection.
    pub fn cookies(&self) -> &Arc<Cookies> {
        &self.cookies
    }
}

/// Builds `upstream`'s streamable HTTP transport; the session it opens is noted in
/// `session`.
pub fn open(
    upstream: &str,
    url: &str,
    headers: &IndexMap<String, String>,
    max_response_bytes: usize,
    callers: Arc<Callers>,
    session: Arc<Affinity>,
    oauth: Option<Arc<UpstreamAuth>>,
) -> Result<HttpTransport, String> {
    let custom: HashMap<HeaderName, HeaderValue> = header_map(headers)?
        .into_iter()
        .filter_map(|(name, value)| Some((name?, value)))
        .collect();
    let http = client(upstream, url, session.cookies().clone())?;
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(custom)
        .max_json_response_size(max_response_bytes)
        .max_sse_event_size(max_response_bytes)
        .reinit_on_expired_session(true);
    let client = RelatingClient {
        http,
        callers,
        session,
        oauth,
    };
    Ok(StreamableHttpClientTransport::with_client(client, config))
}

/// reqwest, noting which of our requests each upstream request came under, and the session;
/// with OAuth, sending the access token and answering 401 and 403 (see [`UpstreamAuth`]).
#[derive(Clone)]
pub struct RelatingClient {
    http: reqwest::Client,
    callers: Arc<Callers>,
    session: Arc<Affinity>,
    oauth: Option<Arc<UpstreamAuth>>,
}

type HttpResult<T> = Result<T, StreamableHttpError<reqwest::Error>>;

impl RelatingClient {
    /// Runs `send` with the access token (or `auth_header`, without OAuth); once more with a
    /// refreshed token after a 401.
    async fn authorized<T, F, Fut>(&self, auth_header: Option<String>, send: F) -> HttpResult<T>
    where
        F: Fn(Option<String>) -> Fut,
        Fut: Future<Output = HttpResult<T>>,
    {
        let Some(auth) = &self.oauth else {
            return send(auth_header).await;
        };
        let token = auth.bearer().await;
        match send(token.clone()).await {
            Err(StreamableHttpError::AuthRequired(refused)) => {
                match auth
                    .rejected(token.as_deref(), &refused.www_authenticate_header)
                    .await
                {
                    Some(fresh) => send(Some(fresh)).await,
                    None => Err(StreamableHttpError::AuthRequired(refused)),
                }
            }
            Err(StreamableHttpError::InsufficientScope(refused)) => {
                auth.insufficient_scope(&refused.www_authenticate_header);
                Err(StreamableHttpError::InsufficientScope(refused))
            }
            other => other,
        }
    }
}

/// Just enough of a JSON-RPC message to tell a request or a log message and read its id.
#[derive(Deserialize)]
struct MessagePeek<'a> {
    id: Option<RequestId>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
}

/// Wraps an event stream: each request and log message in it is related to `ours`, the
/// request whose response stream it is (`None` for the session's own GET stream).
fn relate_requests(
    stream: BoxStream<'static, Result<Sse, SseError>>,
    ours: Option<RequestId>,
    callers: Arc<Callers>,
) -> BoxStream<'static, Result<Sse, SseError>> {
    stream
        .inspect(move |event| {
            let Ok(Sse {
                data: Some(data), ..
            }) = event
            else {
                return;
            };
            // Most events are our response or progress: skip them without parsing.
            let maybe_log = data.contains("\"notifications/message\"");
            let maybe_request = ours.is_some() && data.contains("\"id\"");
            if !data.contains("\"method\"") || !(maybe_log || maybe_request) {
                return;
            }
            let Ok(peek) = serde_json::from_str::<MessagePeek>(data) else {
                return;
            };
            match (peek.method.as_deref(), peek.id, &ours) {
                (Some("notifications/message"), None, _) => callers.relate_log(ours.clone()),
                (Some(_), Some(theirs), Some(ours)) => callers.relate(theirs, ours.clone()),
                _ => {}
            }
        })
        .boxed()
}

impl StreamableHttpClient for RelatingClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.post_message_with_response_limits(
            uri,
            message,
            session_id,
            auth_header,
            custom_headers,
            StreamableHttpResponseLimits::default(),
        )
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let (ours, initialize) = match &message {
            JsonRpcMessage::Request(request) => (
                Some(request.id.clone()),
                matches!(request.request, ClientRequest::InitializeRequest(_)),
            ),
            _ => (None, false),
        };
        let response = self
            .authorized(auth_header, |token| {
                self.http.post_message_with_response_limits(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    token,
                    custom_headers.clone(),
                    limits,
                )
            })
            .await?;
        if initialize {
            match &response {
                StreamableHttpPostResponse::Json(_, session)
                | StreamableHttpPostResponse::Sse(_, session) => {
                    self.session.set_session(session.as_ref())
                }
                _ => {}
            }
        }
        Ok(match (response, ours) {
            (StreamableHttpPostResponse::Sse(stream, session), Some(ours)) => {
                let stream = relate_requests(stream, Some(ours), self.callers.clone());
                StreamableHttpPostResponse::Sse(stream, session)
            }
            (response, _) => response,
        })
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.session.set_session(None);
        self.authorized(auth_header, |token| {
            self.http.delete_session(
                uri.clone(),
                session_id.clone(),
                token,
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let stream = self
            .authorized(auth_header, |token| {
                self.http.get_stream(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    token,
                    custom_headers.clone(),
                )
            })
            .await?;
        Ok(relate_requests(stream, None, self.callers.clone()))
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, StreamableHttpError<Self::Error>> {
        let stream = self
            .authorized(auth_header, |token| {
                self.http.get_stream_with_max_sse_event_size(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    token,
                    custom_headers.clone(),
                    max_sse_event_size,
                )
            })
            .await?;
        Ok(relate_requests(stream, None, self.callers.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_upstream_client_builds_with_our_tls_provider() {
        let headers = IndexMap::from([("Authorization".to_owned(), "Bearer t".to_owned())]);
        let callers = Arc::new(Callers::default());
        let session = Arc::new(Affinity::default());
        assert!(
            open(
                "test",
                "https://127.0.0.1:1/mcp",
                &headers,
                1024,
                callers.clone(),
                session.clone(),
                None
            )
            .is_ok()
        );
        assert!(
            open(
                "test",
                "http://127.0.0.1:1/mcp",
                &IndexMap::new(),
                1024,
                callers,
                session,
                None
            )
            .is_ok()
        );
    }
}
