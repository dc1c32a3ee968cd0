//! `/mcp`: a request that passed the front door's guards (see [`super::HttpFront::handle`]),
//! read within its limits, then served by the 2026-07-28 call's own way ([`super::fast`]), a
//! session-era call's ([`super::session_call`]), or rmcp's streamable HTTP service, whose
//! answers are mended where clients could not act on them.

use std::future::Future;

use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use rmcp::{ErrorData, model::ClientJsonRpcMessage};

use super::{
    Body, HttpFront, RequestBody, StreamsWhileListened,
    answers::{jsonrpc_error_response, message_response},
    asks_to_close,
    body::{BodyError, discard, message_of, read_body, until_lease_ends},
    fast::{self, FastAnswer},
    in_session::not_yours,
};
use crate::{
    downstream::sessions::{self, Seat},
    gateway::ListenSubscribed,
    jsonrpc::{error_reply, too_deep, too_deep_reply},
    mcp_headers,
    security::{Lease, Principal},
};

impl HttpFront {
    /// `/mcp` (and `/mcp/{name}`). `seat`, when the request opens a session, is the session's
    /// (see [`sessions::opening`]).
    pub(super) fn mcp(
        &self,
        request: Request<RequestBody>,
        seat: Option<Seat>,
    ) -> impl Future<Output = Response<Body>> + Send + '_ {
        let too_large = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|length| length > self.max_body_bytes as u64);
        let (parts, body) = request.into_parts();
        async move {
            if too_large {
                discard(body, self.max_body_bytes).await;
                return self.body_too_large();
            }
            let method = parts.method.clone();
            // Sessions belong to the credential that opened them: another key of the same user
            // is another client.
            let user = parts
                .extensions
                .get::<Principal>()
                .map(|principal| principal.token_id);
            let session = parts
                .headers
                .get(mcp_headers::SESSION_ID)
                .and_then(|id| id.to_str().ok());
            if let (Some(user), Some(session)) = (user, session)
                && !self.sessions.may_use(session, user)
            {
                return not_yours();
            }
            let mut body = body;
            let body = match read_body(&mut body, self.max_body_bytes).await {
                Ok(bytes) => bytes,
                Err(BodyError::TooLarge) => {
                    discard(body, self.max_body_bytes).await;
                    return self.body_too_large();
                }
                Err(BodyError::TimedOut(error)) => {
                    let mut response = jsonrpc_error_response(
                        StatusCode::REQUEST_TIMEOUT,
                        ErrorData::invalid_request(error.to_string(), None),
                    );
                    response.headers_mut().insert(
                        header::CONNECTION,
                        header::HeaderValue::from_static("close"),
                    );
                    return response;
                }
                Err(BodyError::Read(error)) => {
                    return jsonrpc_error_response(
                        StatusCode::BAD_REQUEST,
                        ErrorData::invalid_request(
                            format!("cannot read the request body: {error}"),
                            None,
                        ),
                    );
                }
            };
            if too_deep(&body, self.max_json_depth) {
                return message_response(
                    StatusCode::BAD_REQUEST,
                    &too_deep_reply::<_, _, _>(self.max_json_depth),
                );
            }
            let counted = crate::metrics::metrics().bytes(crate::metrics::ClientTransport::Http);
            counted.received.inc_by(body.len() as u64);
            // The session does not go to sleep under its message (see `sessions::sleep`).
            let _arriving = session.and_then(|id| self.sessions.arriving(id));
            if let Some(id) = session {
                self.settle(id, &method, &parts, &body).await;
            }
            if method == Method::POST
                && let Some(answer) = fast::tool_call(&self.gateway, &parts, &body).await
            {
                return match answer {
                    FastAnswer::Whole(status, text) => {
                        counted.sent.inc_by(text.len() as u64);
                        Response::builder()
                            .status(status)
                            .header(header::CONTENT_TYPE, "application/json")
                            .body(Body::from(text))
                            .unwrap_or_else(|_| Response::new(Body::empty()))
                    }
                    FastAnswer::Stream(response) => counted_as_sent(response, &counted.sent),
                };
            }
            if method == Method::POST
                && session.is_some()
                && let Some(response) = self
                    .session_calls
                    .serve(&self.gateway, &self.sessions, &parts, &body)
                    .await
            {
                return counted_as_sent(response, &counted.sent);
            }
            let lease = parts.extensions.get::<Lease>().cloned();
            // A request that still finds its session asleep (a GET, or a POST whose wake did not
            // finish) wakes it in rmcp, with what rmcp does not keep.
            let waking = session.and_then(|id| self.sessions.waking(id));
            let mut parts = parts;
            if let Some(waking) = waking {
                parts.extensions.insert(waking);
            }
            let subscribed = (method == Method::POST
                && message_of(&body, "subscriptions/listen").is_some())
            .then(|| {
                let (signal, subscribed) = ListenSubscribed::new();
                parts.extensions.insert(signal);
                subscribed
            });
            // A GET's stream and a listen's last while their client listens.
            let streams_while_listened =
                (method == Method::GET || subscribed.is_some()).then(|| StreamsWhileListened {
                    closes: asks_to_close(&parts.headers),
                });
            let request = Request::from_parts(parts, Full::new(body.clone()));
            let mut service = self.mcp.clone();
            let call = tower_service::Service::call(&mut service, request);
            let answered = match seat {
                Some(seat) => sessions::opening(seat, call).await,
                None => call.await,
            };
            let mut response = match answered {
                Ok(response) => counted_as_sent(response.map(Body::new), &counted.sent),
                Err(never) => match never {},
            };
            if let Some(subscribed) = subscribed {
                // Its acknowledgment says the stream is subscribed: not before it is (see
                // `gateway/server/listen.rs`). A refused request fires it by dropping it.
                let _ = subscribed.await;
            }
            if let Some(mark) = streams_while_listened {
                response.extensions_mut().insert(mark);
            }
            // A stream opened with a credential ends when the credential does. A body of known
            // length is already whole, and keeps its length (a watched body would go out chunked).
            let response = match lease {
                Some(lease) if known_length(&response).is_none() => {
                    response.map(|body| Body::new(until_lease_ends(body, lease)))
                }
                _ => response,
            };
            if method == Method::DELETE && response.status() == StatusCode::ACCEPTED {
                // The session is gone when rmcp answers; 202 ("accepted, not done") makes the
                // Python SDK log a failed termination.
                let (mut parts, body) = response.into_parts();
                parts.status = StatusCode::NO_CONTENT;
                return Response::from_parts(parts, body);
            }
            if method == Method::POST && response.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                // rmcp answers an unparsable body with 415 and plain text; a wrong Content-Type gets
                // the same status but a parsable body, and keeps rmcp's answer.
                if let Err(error) = serde_json::from_slice::<ClientJsonRpcMessage>(&body) {
                    return message_response(
                        StatusCode::BAD_REQUEST,
                        &error_reply::<_, _, _>(&body, &error),
                    );
                }
            }
            response
        }
    }

    fn body_too_large(&self) -> Response<Body> {
        jsonrpc_error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorData::invalid_request(
                format!("request body exceeds {} bytes", self.max_body_bytes),
                None,
            ),
        )
    }
}

/// The length of `response`'s body, if it is known before it is sent (then it goes out
/// with a `Content-Length`, not chunked).
fn known_length(response: &Response<Body>) -> Option<u64> {
    hyper::body::Body::size_hint(response.body()).exact()
}

/// `response`, its body counted in `sent` as it streams (an SSE response lasts as long as
/// its session). A body of known length is counted at once and left as it is: a mapped body
/// has no length, and would go out chunked.
fn counted_as_sent(
    response: Response<Body>,
    sent: &prometheus_client::metrics::counter::Counter,
) -> Response<Body> {
    if let Some(length) = known_length(&response) {
        sent.inc_by(length);
        return response;
    }
    let sent = sent.clone();
    response.map(|body| {
        Body::new(body.map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                sent.inc_by(data.len() as u64);
            }
            frame
        }))
    })
}
