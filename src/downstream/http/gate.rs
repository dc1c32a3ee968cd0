//! Who may use `/mcp` and `/ws` when they are guarded: an API key or login token, or an
//! access token of the identity provider (`auth.oauth`); and the answer to anyone else.

use http::{Response, StatusCode, header};
use rmcp::ErrorData;

use super::{
    Body, HttpFront,
    answers::{jsonrpc_error_response, unauthorized},
};
use crate::{
    registry::now_ms,
    security::{
        Lease, Principal, TokenCache, bearer,
        identity::{self, IdentityProvider},
    },
};

impl HttpFront {
    /// Who a guarded request comes from: an API key or login token, else (with
    /// `auth.oauth`) an access token of the identity provider.
    pub(super) async fn caller(
        &self,
        tokens: &TokenCache,
        headers: &http::HeaderMap,
    ) -> Result<(Principal, Lease), identity::Refusal> {
        use identity::Refusal;
        let Some(token) = bearer(headers) else {
            return Err(Refusal::Unauthorized(None));
        };
        if let Some(known) = tokens.verify_anywhere(token, now_ms()).await {
            return Ok(known);
        }
        match &self.identity {
            Some(identity) if IdentityProvider::is_jwt(token) => identity.verify(token).await,
            _ => Err(Refusal::Unauthorized(Some(
                "the token is unknown, expired or revoked".into(),
            ))),
        }
    }

    /// The answer to a request whose credential was refused.
    pub(super) fn refused(&self, refusal: &identity::Refusal) -> Response<Body> {
        use identity::Refusal;
        let Some(identity) = &self.identity else {
            return unauthorized();
        };
        let (status, kind) = match refusal {
            Refusal::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "Unauthorized"),
            Refusal::InsufficientScope => (StatusCode::FORBIDDEN, "Forbidden"),
        };
        let why = match refusal {
            Refusal::Unauthorized(None) => {
                "this endpoint needs a bearer token: sign in with the identity provider, or use an API key"
                    .to_owned()
            }
            refused => refused.to_string(),
        };
        let mut response = jsonrpc_error_response(
            status,
            ErrorData::invalid_request(format!("{kind}: {why}"), None),
        );
        if let Ok(challenge) = header::HeaderValue::from_str(&identity.challenge(refusal)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
