//! `credentials: per-user`: a user's requests to such an upstream go on their own connection,
//! signed in with their own token (see `upstream::own_connections`). A user who has not
//! signed in is told where to, in the way their client understands:
//! - a session-era client that takes URL elicitations gets the spec's
//!   `URLElicitationRequired` error (`-32042`) naming the address;
//! - a 2026-07-28 client that takes them gets `input_required` with a URL elicitation for a
//!   `tools/call`; when it retries with the user's acceptance, the call waits for the sign-in
//!   to finish (within the upstream's call deadline) and then goes on;
//! - any other client, or door, gets an error whose message names the address.
//!
//! The address is the gateway's own page, not the authorization server's: it asks whoever
//! opens it to log in to the gateway, and sends only the user the address was made for on to
//! the authorization server (the spec's defence against a passed-on sign-in link).

use std::sync::Arc;

use rmcp::{
    Peer, RoleClient,
    model::{
        CallToolResponse, CustomNotification, InputRequiredResult, InputResponses,
        ServerNotification,
    },
};
use serde_json::{Value, json};

use super::{Gateway, Origin};
use crate::{
    error::{GatewayError, sign_in_message},
    security::Identity,
    upstream::{SIGN_IN_TIME, Upstream, UpstreamAuth},
};

/// The key of the gateway's own question in an `input_required` result's `inputRequests`.
const SIGN_IN_INPUT: &str = "mcps-sign-in";

/// What the client answered to the gateway's own sign-in question, if it was asked one.
pub(super) enum SignInAnswer {
    /// The user went to sign in.
    Accepted,
    /// The user declined, or dismissed it.
    Refused(String),
}

impl Gateway {
    /// The connection `who`'s request to the per-user `upstream` goes on: their own, once
    /// they have signed in.
    pub(super) async fn own_connection(
        &self,
        upstream: &Arc<Upstream>,
        who: &Identity,
        origin: &Origin,
    ) -> Result<(Arc<Upstream>, Peer<RoleClient>), GatewayError> {
        let own = self.open_own_connection(upstream, who).await?;
        match own.ready_peer() {
            Ok(peer) => Ok((own, peer)),
            Err(error) => match own.oauth().filter(|auth| auth.needed().is_some()) {
                Some(auth) => Err(self.sign_in_needed(auth, who, origin)),
                None => Err(error),
            },
        }
    }

    async fn open_own_connection(
        &self,
        upstream: &Arc<Upstream>,
        who: &Identity,
    ) -> Result<Arc<Upstream>, GatewayError> {
        let unavailable = |reason: &str| GatewayError::UpstreamUnavailable {
            upstream: upstream.name().to_owned(),
            reason: reason.to_owned(),
        };
        let (tracker, shutdown) = self
            .runtime
            .get()
            .ok_or_else(|| unavailable("the gateway is not serving yet"))?;
        upstream
            .own_connection(&who.key(), tracker, shutdown)
            .await
            .ok_or_else(|| unavailable("it does not take each user's own sign-in"))
    }

    /// Forgets everything `principal` (an `Identity::key`) signed in to: its own connections
    /// close, and its kept tokens are deleted. For a revoked API key.
    pub async fn forget_principal(&self, principal: &str) {
        for upstream in self.upstreams().iter() {
            upstream.close_own_connection(principal).await;
        }
        match self.oauth.forget_owner(principal).await {
            Ok(0) => {}
            Ok(forgotten) => {
                tracing::info!(forgotten, "a revoked key's upstream sign-ins forgotten")
            }
            Err(error) => tracing::warn!(%error, "cannot forget a revoked key's upstream sign-ins"),
        }
    }

    /// After the user accepted to sign in: waits, within the upstream's call deadline, for
    /// them to finish (or returns at once if they already have).
    pub(super) async fn await_sign_in(&self, upstream: &Arc<Upstream>, who: &Identity) {
        let Ok(own) = self.open_own_connection(upstream, who).await else {
            return;
        };
        if let Some(auth) = own.oauth() {
            let _ = tokio::time::timeout(upstream.call_timeout(), auth.signed_in()).await;
        }
    }

    fn sign_in_needed(
        &self,
        auth: &Arc<UpstreamAuth>,
        who: &Identity,
        origin: &Origin,
    ) -> GatewayError {
        let upstream = auth.upstream().to_owned();
        let owner = who.owner();
        if !self.oauth.can_sign_in(owner) {
            return GatewayError::UpstreamUnavailable {
                upstream,
                reason: "it needs each user's own sign-in, and the gateway has no client at the \
                         identity provider to learn who you are there (auth.oauth.client_id): \
                         ask an administrator"
                    .into(),
            };
        }
        let Some((url, elicitation_id)) = self.oauth.connect_address(auth, owner) else {
            return GatewayError::UpstreamUnavailable {
                upstream,
                reason: "it needs your own sign-in, and the gateway has no address to offer yet"
                    .into(),
            };
        };
        if takes_url_elicitations(origin) {
            self.tell_when_signed_in(auth, &elicitation_id, origin);
            GatewayError::SignInRequired {
                upstream,
                url,
                elicitation_id,
            }
        } else {
            GatewayError::UpstreamUnavailable {
                upstream,
                reason: format!(
                    "you have not signed in to it: open {url} in a browser, sign in, then call again"
                ),
            }
        }
    }

    /// Once the sign-in `auth` waits for is done, sends the session-era client that was
    /// given the URL elicitation `id` the spec's `notifications/elicitation/complete`, so it
    /// may retry by itself. Once per session and address; only to that session (the spec:
    /// only to the client that was given the elicitation).
    fn tell_when_signed_in(&self, auth: &Arc<UpstreamAuth>, id: &str, origin: &Origin) {
        let Some(caller) = origin.caller.as_ref().filter(|_| !origin.stateless) else {
            return;
        };
        let (Some(session), Some((tracker, shutdown))) = (caller.session(), self.runtime.get())
        else {
            return;
        };
        if !self.oauth.watch(id, caller.key()) {
            return;
        }
        let (auth, id, shutdown) = (auth.clone(), id.to_owned(), shutdown.clone());
        tracker.spawn(async move {
            tokio::select! {
                () = auth.signed_in() => {}
                () = tokio::time::sleep(SIGN_IN_TIME) => return,
                () = shutdown.cancelled() => return,
            }
            let complete = CustomNotification::new(
                "notifications/elicitation/complete",
                Some(json!({ "elicitationId": id })),
            );
            if let Err(error) = session
                .send_notification(ServerNotification::CustomNotification(complete))
                .await
            {
                tracing::debug!(%error, "the client's session ended before its sign-in did");
            }
        });
    }
}

/// Whether the client said it takes URL elicitations.
fn takes_url_elicitations(origin: &Origin) -> bool {
    origin
        .capabilities
        .as_ref()
        .and_then(|capabilities| capabilities.elicitation.as_ref())
        .is_some_and(|elicitation| elicitation.url.is_some())
}

/// Takes the client's answer to the gateway's own question out of `responses` (the upstream
/// never asked it, so must not see it).
pub(super) fn take_sign_in_answer(responses: &mut Option<InputResponses>) -> Option<SignInAnswer> {
    let answer = responses.as_mut()?.remove(SIGN_IN_INPUT)?;
    if responses.as_ref().is_some_and(InputResponses::is_empty) {
        *responses = None;
    }
    match answer.get("action").and_then(Value::as_str) {
        Some("accept") => Some(SignInAnswer::Accepted),
        other => Some(SignInAnswer::Refused(format!(
            "the sign-in was not accepted ({})",
            other.unwrap_or("no action")
        ))),
    }
}

/// For a 2026-07-28 client: a sign-in the caller must make, as the `input_required` result
/// that asks them to (a URL elicitation; that revision has no elicitation id).
pub(super) fn as_input_required(error: GatewayError) -> Result<CallToolResponse, GatewayError> {
    let result = sign_in_request(error)?;
    match serde_json::from_value::<InputRequiredResult>(result.clone()) {
        Ok(result) => Ok(CallToolResponse::InputRequired(result)),
        Err(_) => Err(GatewayError::Internal {
            reason: format!("the gateway's own sign-in question does not read back: {result}"),
        }),
    }
}

/// [`as_input_required`] as JSON: the `input_required` result that asks for the sign-in
/// `error` says the caller must make; any other error as it is.
pub(super) fn sign_in_request(error: GatewayError) -> Result<Value, GatewayError> {
    let GatewayError::SignInRequired { upstream, url, .. } = &error else {
        return Err(error);
    };
    Ok(json!({
        "resultType": "input_required",
        "inputRequests": {
            SIGN_IN_INPUT: {
                "method": "elicitation/create",
                "params": { "mode": "url", "url": url, "message": sign_in_message(upstream) },
            },
        },
    }))
}
