//! Learning which of the identity provider's users is at a browser: the OAuth authorization
//! code flow with PKCE, as the gateway's own client at the provider (`auth.oauth.client_id`).
//! The gateway's sign-in page for `credentials: per-user` upstreams needs it for the
//! provider's users, whose passwords it never holds. The provider sends the browser back to
//! [`PROVIDER_CALLBACK_PATH`] with a code; the gateway exchanges it for an access token to
//! itself (the `resource` is the gateway's audience) and checks that token exactly as it
//! checks every client's: the subject it names is who is at the browser. The token is used
//! for nothing else, and not kept.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde::Deserialize;

use super::{IdentityProvider, Principal};
use crate::sync::lock;

/// Where the identity provider sends the browser back to.
pub const PROVIDER_CALLBACK_PATH: &str = "/oauth/identity-callback";

/// How long a login at the provider may take.
const LOGIN_TIME: Duration = Duration::from_secs(10 * 60);

/// The most logins under way at once: a page opened again and again makes no more.
const MAX_PENDING: usize = 1024;

/// The gateway's logins at the identity provider, under way.
pub struct ProviderLogin {
    provider: Arc<IdentityProvider>,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    /// By OAuth `state`: good for one callback.
    pending: std::sync::Mutex<HashMap<String, Pending>>,
}

struct Pending {
    verifier: PkceCodeVerifier,
    /// What the login is for, given back when it is done.
    then: String,
    /// The browser it was started in (the id its cookie holds): only it may finish it.
    browser: String,
    since: Instant,
}

/// A login that did not tell who is there.
#[derive(Debug, thiserror::Error)]
pub enum LoginFailed {
    /// The callback names no login under way (unknown, used, or too old).
    #[error("this login is unknown or expired: start again from your sign-in address")]
    Unknown,
    /// The provider's answer came to another browser than the one that started the login
    /// (an answer passed on to someone else).
    #[error(
        "this login was started in another browser: nobody was signed in. Open your own \
         sign-in address in this browser"
    )]
    OtherBrowser,
    /// The provider, or what it answered, failed.
    #[error("{0}")]
    Provider(String),
}

impl ProviderLogin {
    /// Logins at `provider` as the client its config names; `None` without a client id.
    pub fn new(provider: Arc<IdentityProvider>, public_url: &str) -> Option<Self> {
        let config = provider.config();
        let client_id = config.client_id()?.to_owned();
        let client_secret = config.client_secret().map(str::to_owned);
        let redirect_uri = format!(
            "{}{PROVIDER_CALLBACK_PATH}",
            public_url.trim_end_matches('/')
        );
        Some(Self {
            provider,
            client_id,
            client_secret,
            redirect_uri,
            pending: std::sync::Mutex::default(),
        })
    }

    /// The provider's authorization URL for a login in `browser` (an id its cookie holds)
    /// that, done, gives back `then`.
    pub async fn start(&self, then: &str, browser: &str) -> Result<String, String> {
        let endpoint = self
            .provider
            .issuer_metadata()
            .await?
            .authorization_endpoint
            .ok_or("the identity provider's metadata names no authorization_endpoint")?;
        let mut url = url::Url::parse(&endpoint)
            .map_err(|error| format!("its authorization_endpoint is not a URL: {error}"))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = super::random_id();
        {
            let config = self.provider.config();
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", "S256")
                .append_pair("resource", &config.audience);
            if !config.scopes.is_empty() {
                query.append_pair("scope", &config.scopes.join(" "));
            }
        }
        let mut pending = lock(&self.pending);
        pending.retain(|_, login| login.since.elapsed() < LOGIN_TIME);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, login)| login.since)
                .map(|(state, _)| state.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(
            state,
            Pending {
                verifier,
                then: then.to_owned(),
                browser: browser.to_owned(),
                since: Instant::now(),
            },
        );
        Ok(url.into())
    }

    /// Finishes the login `state` names with the provider's `code` (and `iss`, which must be
    /// the provider's when it is sent, RFC 9207), answered in `browser`: what it was for, and
    /// who signed in.
    pub async fn finish(
        &self,
        state: &str,
        code: &str,
        iss: Option<&str>,
        browser: Option<&str>,
    ) -> Result<(String, Principal), LoginFailed> {
        let pending = lock(&self.pending)
            .remove(state)
            .filter(|login| login.since.elapsed() < LOGIN_TIME)
            .ok_or(LoginFailed::Unknown)?;
        if browser != Some(pending.browser.as_str()) {
            return Err(LoginFailed::OtherBrowser);
        }
        let failed = |why: String| LoginFailed::Provider(why);
        let config = self.provider.config();
        if iss.is_some_and(|iss| iss != config.issuer) {
            return Err(failed(format!(
                "the answer came from another issuer than {} (RFC 9207)",
                config.issuer
            )));
        }
        let token = self
            .exchange(code, pending.verifier)
            .await
            .map_err(failed)?;
        let (principal, _) = self.provider.verify(&token).await.map_err(|refusal| {
            failed(format!(
                "the identity provider's token for the gateway is not accepted: {refusal}"
            ))
        })?;
        Ok((pending.then, principal))
    }

    /// The access token the provider gives for `code`.
    async fn exchange(&self, code: &str, verifier: PkceCodeVerifier) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
        }
        let endpoint = self
            .provider
            .issuer_metadata()
            .await?
            .token_endpoint
            .ok_or("the identity provider's metadata names no token_endpoint")?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", verifier.secret()),
            ("client_id", &self.client_id),
            ("resource", &self.provider.config().audience),
        ];
        let mut request = self.provider.http().post(&endpoint);
        if let Some(secret) = &self.client_secret {
            request = request.basic_auth(form_encoded(&self.client_id), Some(form_encoded(secret)));
        }
        let answer: Answer = super::token_endpoint::post_form(request, &form)
            .await
            .map_err(|why| format!("the identity provider's {why}"))?;
        Ok(answer.access_token)
    }
}

/// HTTP Basic client credentials are form-encoded first (RFC 6749 §2.3.1).
fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded() {
        assert_eq!(form_encoded("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
