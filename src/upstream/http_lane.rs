//! The gateway's own lane to a streamable HTTP upstream, in either era.
//!
//! A request is a POST, answered by plain JSON or by an event stream that ends with the
//! answer; the lane sends it itself, with the arguments and the result as JSON text, instead
//! of going through rmcp's client task. Everything else on the connection (the handshake,
//! list requests, the session's own GET stream) stays rmcp's.
//!
//! - **2026-07-28** has no session: the POST carries everything, with the headers the
//!   revision asks for (`MCP-Protocol-Version`, SEP-2243's `Mcp-Method`, `Mcp-Name` and
//!   `Mcp-Param-*`, in Base64 when a header cannot carry a value as it is). A call dropped
//!   before its answer closes its request, which is how this revision cancels.
//! - **The session era**: the POST names the session rmcp's client opened (`Mcp-Session-Id`,
//!   noted by the transport, see [`Affinity`]). The upstream may put requests of its own
//!   (sampling, elicitation, roots) and log messages on the call's stream; the caller's
//!   answers go back as POSTs of their own, and a cancellation as `notifications/cancelled`.
//!   A stream the upstream closes before the answer is resumed with a GET that names its last
//!   event, after the delay the upstream asked for (SEP-1699, see [`exchange`]).
//!
//! The operator's configured headers go on every request.

mod exchange;
mod follow;
mod headers;
mod hop;
mod idle_closes;
mod route;
mod wire;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as IncomingBody;
use rmcp::{
    ErrorData,
    model::{ClientJsonRpcMessage, ClientResult, JsonRpcMessage, ProtocolVersion, RequestId},
};
use url::Url;

use self::exchange::StreamEnds;
pub use self::exchange::{Exchange, Incoming};
use self::{
    headers::{
        bearer_header, header_value, post_headers, take_credentials, with_host, with_mirrored,
    },
    wire::{Wire, wire},
};
pub use self::{
    hop::HopIo,
    route::{proxy_connector, relayed_by_a_proxy},
};
use super::{
    UpstreamAuth,
    client::UpstreamClient,
    cookies::Cookies,
    http::{Affinity, header_map},
    lane::{LaneError, id_text, read_answer, request_text},
    mirrored::Mirrored,
    redirects,
};
use crate::{config::UpstreamConfig, mcp_headers};

/// One streamable HTTP upstream connection, for the lane's requests.
pub struct HttpLane {
    upstream: String,
    http: Wire,
    url: Uri,
    /// What requests name: the URL's path and query (origin-form).
    target: Uri,
    /// The configured headers, `MCP-Protocol-Version` and `Host`.
    headers: HeaderMap,
    /// Those and what every POST carries besides (`Content-Type`, `Accept`), made once: the
    /// request builder would parse each name and value again for every call.
    post_headers: HeaderMap,
    max_response_bytes: usize,
    next: AtomicU64,
    /// The session era: the session rmcp's client opened. `None` in 2026-07-28.
    session: Option<Arc<Affinity>>,
    /// The cookies the upstream set on this connection, shared with rmcp's client.
    cookies: Arc<Cookies>,
    /// `url` as the `url` crate has it, parsed once: cookies are matched and redirects
    /// resolved against it.
    parsed_url: Url,
    /// Takes the upstream's notifications that concern no call (list changes, resource
    /// updates) when they come on a call's stream, as rmcp's handler would.
    notices: UpstreamClient,
    /// Its OAuth sign-in: every request carries the access token.
    oauth: Option<Arc<UpstreamAuth>>,
    /// The streams being read to their end after their answers.
    stream_ends: Arc<StreamEnds>,
}

impl std::fmt::Debug for HttpLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the headers: they may hold secrets.
        f.debug_struct("HttpLane")
            .field("url", &self.url.to_string())
            .field("session_era", &self.session.is_some())
            .finish()
    }
}

/// Media types.
const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";

impl HttpLane {
    /// The lane to `config`'s URL, speaking `version`: in a session (`session`, the session
    /// era) or without one (2026-07-28).
    pub(super) fn new(
        name: &str,
        config: &UpstreamConfig,
        version: &ProtocolVersion,
        max_response_bytes: usize,
        affinity: Arc<Affinity>,
        notices: UpstreamClient,
        oauth: Option<Arc<UpstreamAuth>>,
    ) -> Result<Self, String> {
        let text = config.url.as_deref().ok_or("no URL")?;
        let mut parsed_url = Url::parse(text).map_err(|error| format!("its URL: {error}"))?;
        let credentials = take_credentials(&mut parsed_url);
        // Without the user and password, which only the header carries from here on.
        let text = match credentials {
            Some(_) => parsed_url.as_str(),
            None => text,
        };
        let url: Uri = text
            .parse()
            .map_err(|error| format!("its URL {text:?}: {error}"))?;
        let mut headers = header_map(&config.headers)?;
        // The operator's own `Authorization` header, configured, goes before them.
        if let Some(credentials) = credentials
            && !headers.contains_key(header::AUTHORIZATION)
        {
            headers.insert(header::AUTHORIZATION, credentials);
        }
        let cookies = affinity.cookies().clone();
        let session = version.has_initialize().then_some(affinity);
        let version = HeaderValue::from_str(version.as_str()).map_err(|error| error.to_string())?;
        headers.insert(mcp_headers::PROTOCOL_VERSION, version);
        with_host(&mut headers, &url);
        let post_headers = post_headers(&headers);
        let target = url
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |target| Uri::from(target.clone()));
        Ok(Self {
            upstream: name.to_owned(),
            http: wire(name, &url)?,
            url,
            target,
            headers,
            post_headers,
            max_response_bytes,
            next: AtomicU64::new(1),
            session,
            cookies,
            parsed_url,
            notices,
            oauth,
            stream_ends: StreamEnds::new(name),
        })
    }

    /// Whether requests go in a session (the session era).
    pub fn in_session(&self) -> bool {
        self.session.is_some()
    }

    /// The id of the session requests go in now, if any.
    pub(super) fn session_id(&self) -> Option<Arc<String>> {
        self.session
            .as_ref()
            .and_then(|session| session.session_id())
    }

    pub(super) fn notices(&self) -> &UpstreamClient {
        &self.notices
    }

    /// The number of a new request: reserved first, so that its progress token and its
    /// cancellation can name it before it is sent.
    pub fn reserve(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// POSTs `method` with `params` (an object's text) as request `number`; the exchange
    /// yields what comes back. [`LaneError::SessionExpired`]: the upstream no longer knows
    /// the session.
    pub async fn send(
        &self,
        number: u64,
        method: &str,
        mirrored: &Mirrored,
        params: &str,
    ) -> Result<Exchange<'_>, LaneError> {
        let body = Bytes::from(request_text(number, method, params, ""));
        let session = self.session_id();
        let build = |token: Option<&str>, target: &Uri| {
            let mut request = self.post(token, body.clone(), target);
            let headers = request.headers_mut();
            match (&self.session, &session) {
                (None, _) => with_mirrored(headers, method, mirrored)?,
                (Some(_), Some(id)) => {
                    headers.insert(mcp_headers::SESSION_ID, header_value(id)?);
                }
                (Some(_), None) => {}
            }
            Ok(request)
        };
        let token = self.bearer().await;
        let mut response = self
            .following(|target| build(token.as_deref(), target))
            .await?;
        if let Some(auth) = &self.oauth {
            response = match refusal(&response) {
                Some(Refusal::Unauthorized(challenge)) => {
                    self.let_go(response);
                    match auth.rejected(token.as_deref(), &challenge).await {
                        Some(fresh) => self.following(|target| build(Some(&fresh), target)).await?,
                        None => {
                            return Err(LaneError::Http(auth.needed().unwrap_or_else(|| {
                                "it refused the gateway's sign-in (HTTP 401)".into()
                            })));
                        }
                    }
                }
                Some(Refusal::InsufficientScope(challenge)) => {
                    self.let_go(response);
                    return Err(LaneError::Http(auth.insufficient_scope(&challenge)));
                }
                None => response,
            };
        }
        let status = response.status();
        if status == StatusCode::NOT_FOUND && session.is_some() {
            self.let_go(response);
            return Err(LaneError::SessionExpired);
        }
        if is_event_stream(response.headers()) {
            return Ok(Exchange::streaming(self, number, status, response));
        }
        let body = read_capped(response, self.max_response_bytes).await?;
        match read_answer(&body, &self.upstream) {
            Some((ours, answer)) if ours == number => Ok(Exchange::answered(self, number, answer)),
            _ => Err(LaneError::Http(format!(
                "it answered HTTP {status} without a JSON-RPC answer to the request"
            ))),
        }
    }

    /// Sends the caller's answer to the upstream's request `id` (the session era).
    pub async fn reply(&self, id: RequestId, answer: Result<ClientResult, ErrorData>) {
        let message: ClientJsonRpcMessage = match answer {
            Ok(result) => JsonRpcMessage::response(result, id),
            Err(error) => JsonRpcMessage::error(error, Some(id)),
        };
        match serde_json::to_string(&message) {
            Ok(text) => self.notify(text, "an answer to its request").await,
            Err(error) => {
                tracing::warn!(upstream = %self.upstream, %error, "cannot write an answer to its request")
            }
        }
    }

    /// Tells the upstream that our request `number` is cancelled (the session era; in
    /// 2026-07-28 closing the request's stream says it).
    pub async fn cancel(&self, number: u64, reason: &str) {
        if self.session.is_none() {
            return;
        }
        let notice = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{{\"requestId\":{},\"reason\":{}}}}}",
            id_text(number),
            serde_json::to_string(reason).unwrap_or_else(|_| "\"\"".into())
        );
        self.notify(notice, "notifications/cancelled").await;
    }

    /// The access token to send, with OAuth.
    async fn bearer(&self) -> Option<String> {
        match &self.oauth {
            Some(auth) => auth.bearer().await,
            None => None,
        }
    }

    /// A request to `target` on the upstream with the configured headers and the access
    /// token, if any.
    fn to_upstream(
        &self,
        method: Method,
        token: Option<&str>,
        target: &Uri,
    ) -> http::request::Builder {
        let mut request = Request::builder().method(method).uri(target.clone());
        if let Some(headers) = request.headers_mut() {
            headers.clone_from(&self.headers);
            if let Some(value) = token.and_then(bearer_header) {
                headers.insert(header::AUTHORIZATION, value);
            }
            self.add_cookies(headers, target);
        }
        request
    }

    /// A POST of a JSON-RPC message, `body`, to `target` on the upstream.
    fn post(&self, token: Option<&str>, body: Bytes, target: &Uri) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = target.clone();
        let headers = request.headers_mut();
        headers.clone_from(&self.post_headers);
        if let Some(value) = token.and_then(bearer_header) {
            headers.insert(header::AUTHORIZATION, value);
        }
        self.add_cookies(headers, target);
        request
    }

    /// The cookies the upstream set that a request for `target` carries, if it set any.
    fn add_cookies(&self, headers: &mut HeaderMap, target: &Uri) {
        if self.cookies.is_empty() {
            return;
        }
        if let Some(value) = self.cookies.header(&self.cookie_url_of(target)) {
            headers.insert(header::COOKIE, value);
        }
    }

    /// Keeps the cookies a response to a request for `target` set.
    fn keep_cookies(&self, response: &Response<IncomingBody>, target: &Uri) {
        if Cookies::sets_any(response.headers()) {
            self.cookies
                .heard(response.headers(), &self.cookie_url_of(target));
        }
    }

    /// The upstream's URL with `target`'s path and query (a redirect within the origin may
    /// have changed them).
    fn cookie_url_of(&self, target: &Uri) -> Url {
        let mut url = self.parsed_url.clone();
        url.set_path(target.path());
        url.set_query(target.query());
        url
    }

    /// Sends the request `build` makes for the URL's target, and again for where each
    /// redirect within the upstream's origin leads (`follow.rs`); the response, its body still
    /// to read.
    async fn following<F>(&self, build: F) -> Result<Response<IncomingBody>, LaneError>
    where
        F: Fn(&Uri) -> Result<Request<Full<Bytes>>, LaneError>,
    {
        let response = self
            .send_request(build(&self.target)?)
            .await
            .map_err(LaneError::Http)?;
        self.keep_cookies(&response, &self.target);
        if !redirects::is_redirect(response.status()) {
            return Ok(response);
        }
        // Boxed: the calls of an upstream that redirects pay for it, not every call's future.
        Box::pin(follow::redirects(self, response, &build)).await
    }

    /// Lets go of a response the lane wants nothing more of, its body read to its end so
    /// that its connection can carry another request: hyper closes one whose response was
    /// dropped before its end (see [`StreamEnds::read_rest`]). An empty body (a `202` with
    /// `Content-Length: 0`) has ended already.
    fn let_go(&self, response: Response<IncomingBody>) {
        let body = response.into_body();
        if !hyper::body::Body::is_end_stream(&body) {
            self.stream_ends.read_rest(body.into_data_stream());
        }
    }

    /// Sends `request`; the error says why, in words for [`LaneError::Http`].
    async fn send_request(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<IncomingBody>, String> {
        self.http.request(request).await
    }

    /// POSTs a message that expects no answer of its own.
    async fn notify(&self, body: String, what: &str) {
        let token = self.bearer().await;
        let body = Bytes::from(body);
        let session = self.session_id().and_then(|id| header_value(&id).ok());
        let build = |target: &Uri| {
            let mut request = self.post(token.as_deref(), body.clone(), target);
            if let Some(value) = &session {
                request
                    .headers_mut()
                    .insert(mcp_headers::SESSION_ID, value.clone());
            }
            Ok(request)
        };
        match self.following(build).await {
            Ok(response) => {
                if !response.status().is_success() {
                    tracing::debug!(upstream = %self.upstream, status = %response.status(), "it refused {what}");
                }
                self.let_go(response);
            }
            Err(error) => {
                tracing::debug!(upstream = %self.upstream, %error, "cannot send {what}");
            }
        }
    }
}

/// Why an OAuth upstream refused a request, with its `WWW-Authenticate` challenge.
enum Refusal {
    Unauthorized(String),
    InsufficientScope(String),
}

fn refusal<B>(response: &Response<B>) -> Option<Refusal> {
    let challenge = || {
        response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    match response.status() {
        StatusCode::UNAUTHORIZED => Some(Refusal::Unauthorized(challenge())),
        StatusCode::FORBIDDEN if challenge().contains("insufficient_scope") => {
            Some(Refusal::InsufficientScope(challenge()))
        }
        _ => None,
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.as_bytes().get(..EVENT_STREAM.len()))
        .is_some_and(|start| start.eq_ignore_ascii_case(EVENT_STREAM.as_bytes()))
}

/// The whole body, refused past `max` bytes.
async fn read_capped(response: Response<IncomingBody>, max: usize) -> Result<Vec<u8>, LaneError> {
    let mut bytes = response.into_body().into_data_stream();
    let mut body = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut bytes).await {
        let chunk = chunk.map_err(|error| LaneError::Http(crate::error::with_causes(&error)))?;
        if body.len() + chunk.len() > max {
            return Err(LaneError::Http(format!(
                "its answer is longer than limits.max_line_bytes ({max} bytes)"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
