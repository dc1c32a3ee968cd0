//! What the HTTP door does in a client session before a request's message is served: take
//! in a session another gateway on the registry opened (see `sessions::shared`), wake one
//! that sleeps (see `sessions::sleep`), and give rmcp a client's `notifications/initialized`
//! that went to another gateway.

use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header, request::Parts};
use http_body_util::{BodyExt, Full};
use rmcp::ErrorData;

use super::{Body, HttpFront, RequestBody, body::message_of, jsonrpc_error_response, unavailable};
use crate::{gateway::Waking, mcp_headers, security::Principal};

/// How long a sleeping session may take to wake (or to take the client's `initialized`) before
/// its request goes on regardless.
const IN_SESSION_TIME: Duration = Duration::from_secs(5);

/// How long a request waits for its woken session to be registered (see
/// `HttpFront::until_registered`).
const REGISTERED_WITHIN: Duration = Duration::from_secs(1);

impl HttpFront {
    /// Takes in the session `request` names when another gateway on the registry opened it
    /// (see `sessions::shared`), on a seat of this gateway's; an answer instead when the
    /// session is bound to another credential (it does not exist for this one), the seats
    /// are taken, or the registry cannot be read.
    pub(super) async fn continue_session(
        &self,
        request: &Request<RequestBody>,
    ) -> Result<(), Response<Body>> {
        let Some(id) = request
            .headers()
            .get(mcp_headers::SESSION_ID)
            .and_then(|id| id.to_str().ok())
        else {
            return Ok(());
        };
        let stored = match self.sessions.stored_elsewhere(id).await {
            Ok(Some(stored)) => stored,
            // rmcp answers a session nobody knows with 404.
            Ok(None) => return Ok(()),
            Err(error) => {
                tracing::warn!(%error, "cannot look for a session in the registry");
                return Err(unavailable(
                    "the session cannot be continued now: the registry cannot be read; try again"
                        .into(),
                ));
            }
        };
        let user = request
            .extensions()
            .get::<Principal>()
            .map(|principal| principal.token_id);
        if stored.credential.is_some() && stored.credential != user {
            return Err(not_yours());
        }
        let seat = self
            .take_seat(request)
            .map_err(|refusal| unavailable(refusal.to_string()))?;
        // Boxed: rare (a session another gateway opened), and larger than the rest.
        Box::pin(self.sessions.adopt(id, seat, stored)).await;
        Ok(())
    }

    /// Readies session `id` for a request (`method`, `parts`, `body`): wakes it if it sleeps,
    /// and gives rmcp the client's `initialized` if the client sent it elsewhere (a second
    /// one, should the client's own come here too, is dropped by the book).
    pub(super) async fn settle(&self, id: &str, method: &Method, parts: &Parts, body: &[u8]) {
        if method == Method::POST
            && let Some(waking) = self.sessions.waking(id)
        {
            // Woken before its message is served, so that the message finds the session as it
            // was, whichever way serves it.
            self.wake(parts, waking).await;
            self.until_registered(id).await;
        }
        if method != Method::DELETE
            && self
                .sessions
                .initialized_elsewhere(id, || is_initialized(body))
        {
            self.send_in_session(parts, INITIALIZED, None).await;
            self.until_registered(id).await;
        }
    }

    /// Wakes the sleeping session a request (`parts`) names: rmcp restores a session it does
    /// not know when a request names it, so it is sent a `ping` in that session, with the
    /// request's credential and what the session keeps asleep (`waking`).
    async fn wake(&self, parts: &http::request::Parts, waking: Waking) {
        self.send_in_session(
            parts,
            br#"{"jsonrpc":"2.0","id":"mcps-wake","method":"ping"}"#,
            Some(waking),
        )
        .await;
    }

    /// Waits (briefly) until the gateway has session `id`'s `initialized` handled: rmcp hands
    /// a notification to a task of its own and answers before it ran, and until then the
    /// session's calls would miss the door's own way (see `session_call`), whose requests to
    /// the client any replica can pass on.
    async fn until_registered(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + REGISTERED_WITHIN;
        while self.gateway.http_session(id).is_none() {
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!("a woken session was not registered in time");
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Sends `message` to rmcp in the session a request (`parts`) names, with the request's
    /// credential (and `waking`, when it wakes the session), and waits for its answer.
    async fn send_in_session(
        &self,
        parts: &http::request::Parts,
        message: &'static [u8],
        waking: Option<Waking>,
    ) {
        let mut ping = Request::new(Full::new(bytes::Bytes::from_static(message)));
        *ping.method_mut() = Method::POST;
        *ping.uri_mut() = parts.uri.clone();
        *ping.headers_mut() = parts.headers.clone();
        *ping.extensions_mut() = parts.extensions.clone();
        if let Some(waking) = waking {
            ping.extensions_mut().insert(waking);
        }
        let headers = ping.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            header::HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.remove(header::CONTENT_LENGTH);
        // What the request's own headers say of its message (SEP-2243) is not this one's.
        let about_message: Vec<_> = headers
            .keys()
            .filter(|name| {
                let name = name.as_str();
                name == mcp_headers::METHOD
                    || name == mcp_headers::NAME
                    || name.starts_with(mcp_headers::PARAM_PREFIX)
            })
            .cloned()
            .collect();
        for name in about_message {
            headers.remove(name);
        }
        let mut service = self.mcp.clone();
        let answered = async {
            let Ok(response) = tower_service::Service::call(&mut service, ping).await;
            // The answer is read whole: rmcp's stream for a request ends when it is answered.
            let _ = response.into_body().collect().await;
        };
        if tokio::time::timeout(IN_SESSION_TIME, answered)
            .await
            .is_err()
        {
            tracing::warn!("a session took too long to wake or take the client's initialized");
        }
    }
}

/// The client's `notifications/initialized`, for a session whose client sent it to another
/// gateway (see `SessionBook::initialized_elsewhere`).
const INITIALIZED: &[u8] = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Whether `body` is the client's `notifications/initialized`.
fn is_initialized(body: &[u8]) -> bool {
    message_of(body, "notifications/initialized").is_some_and(|message| message.get("id").is_none())
}

/// The answer to a request naming a session another credential opened: for this one it does
/// not exist.
pub(super) fn not_yours() -> Response<Body> {
    tracing::warn!("a request named a session another credential opened; answered as unknown");
    jsonrpc_error_response(
        StatusCode::NOT_FOUND,
        ErrorData::invalid_request("Session not found", None),
    )
}
