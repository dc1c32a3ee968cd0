//! Signing in to an OAuth upstream: the gateway as the OAuth client of the MCP authorization
//! spec, with rmcp's authorization manager doing discovery (RFC 9728, RFC 8414, OpenID),
//! registration (pre-registered, Client ID Metadata Document, RFC 7591), PKCE, `resource`
//! (RFC 8707), `iss` checks (RFC 9207) and refresh.
//!
//! An upstream's requests carry its access token ([`UpstreamAuth::bearer`]). A 401 is answered
//! with one refresh; when that is not possible, the upstream *needs authorization*: it waits,
//! not crash-looping, until an administrator signs it in (`POST
//! /api/v1/mcp/services/{name}/oauth/authorize` answers the URL to open; the authorization
//! server sends the browser back to [`vault::CALLBACK_PATH`]). A 403 `insufficient_scope`
//! asks for a sign-in with the wider scope, at most [`MAX_STEP_UPS`] times in a row. With
//! `grant: client_credentials` the gateway signs in by itself.

mod assertion;
mod sign_in;
mod store;
pub mod vault;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwapOption;
use rmcp::transport::auth::{
    AuthError, AuthorizationManager, AuthorizationMetadata, OAuthClientConfig,
    WWWAuthenticateParams,
};
use tokio::sync::{Mutex, watch};

pub use self::vault::OAuthVault;
use self::{sign_in::registered_config, store::SealedStore};
use crate::{
    config::{CredentialsScope, OAuthConfig, OAuthGrant},
    sync::lock,
};

/// Sign-ins for the same wider scope (403 `insufficient_scope`) in a row before the gateway
/// stops asking for it: with the first sign-in, three authorization requests, the limit the
/// conformance suite holds clients to. A 403 for another scope starts the count over.
pub const MAX_STEP_UPS: u32 = 2;

/// How the gateway names itself when it registers as a client.
const CLIENT_NAME: &str = "MCPS.ONE gateway";

/// A token whose expiry is unknown is read from the manager again after this long.
const UNKNOWN_EXPIRY_RECHECK: Duration = Duration::from_secs(60);

/// An access token and until when it needs no check.
struct CachedToken {
    value: String,
    fresh_until: Instant,
}

/// One upstream's sign-in: the gateway's own, or one user's (`credentials: per-user`).
pub struct UpstreamAuth {
    upstream: Arc<str>,
    /// The user whose sign-in this is (their `Identity::key`); `None` for the gateway's own.
    owner: Option<Arc<str>>,
    url: String,
    config: OAuthConfig,
    /// What `private_key_file` is relative to: the config file's directory.
    key_dir: PathBuf,
    vault: Arc<OAuthVault>,
    store: SealedStore,
    /// The manager of the current sign-in, once there is one.
    manager: Mutex<Option<AuthorizationManager>>,
    /// A sign-in under way: its `state` and its manager, until the callback.
    pending: Mutex<Option<(String, AuthorizationManager)>>,
    token: ArcSwapOption<CachedToken>,
    /// The latest `WWW-Authenticate` challenge the upstream answered with.
    challenge: std::sync::Mutex<Option<String>>,
    /// Why it needs a sign-in (`Some`), or that it does not (`None`).
    needed: watch::Sender<Option<String>>,
    /// The scope the last 403 asked for, and how many times in a row.
    step_ups: std::sync::Mutex<(String, u32)>,
}

impl std::fmt::Debug for UpstreamAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAuth")
            .field("upstream", &self.upstream)
            .finish()
    }
}

/// Why a sign-in could not start or finish.
pub type SignInError = String;

impl UpstreamAuth {
    /// The gateway's own sign-in to `upstream` at `url`; `key_dir` is what a relative
    /// `private_key_file` is found in.
    pub fn new(
        upstream: &str,
        url: &str,
        config: OAuthConfig,
        key_dir: &Path,
        vault: Arc<OAuthVault>,
    ) -> Self {
        let upstream: Arc<str> = Arc::from(upstream);
        Self::owned_by(upstream, None, url, (config, key_dir.to_owned()), vault)
    }

    fn owned_by(
        upstream: Arc<str>,
        owner: Option<Arc<str>>,
        url: &str,
        (config, key_dir): (OAuthConfig, PathBuf),
        vault: Arc<OAuthVault>,
    ) -> Self {
        Self {
            key_dir,
            store: SealedStore::new(upstream.clone(), owner.clone(), vault.clone()),
            upstream,
            owner,
            url: resource_url(url),
            config,
            vault,
            manager: Mutex::new(None),
            pending: Mutex::new(None),
            token: ArcSwapOption::empty(),
            challenge: std::sync::Mutex::new(None),
            needed: watch::Sender::new(None),
            step_ups: std::sync::Mutex::default(),
        }
    }

    /// The same upstream's sign-in for the user `owner` (an `Identity::key`), with
    /// `credentials: per-user`: kept apart from the gateway's and every other user's.
    pub fn for_owner(&self, owner: &str) -> Self {
        Self::owned_by(
            self.upstream.clone(),
            Some(Arc::from(owner)),
            &self.url,
            (self.config.clone(), self.key_dir.clone()),
            self.vault.clone(),
        )
    }

    /// Whether each user signs in for themselves (`credentials: per-user`).
    pub fn per_user(&self) -> bool {
        self.config.credentials == CredentialsScope::PerUser
    }

    /// The user whose sign-in this is; `None` for the gateway's own.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// The upstream's name.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Why it needs a sign-in, if it does.
    pub fn needed(&self) -> Option<String> {
        self.needed.borrow().clone()
    }

    /// Resolves when it comes to need a sign-in (at once if it does now).
    pub async fn lost(&self) {
        let mut needed = self.needed.subscribe();
        let _ = needed.wait_for(Option::is_some).await;
    }

    /// Resolves when it no longer needs a sign-in (at once if it does not).
    pub async fn signed_in(&self) {
        let mut needed = self.needed.subscribe();
        let _ = needed.wait_for(Option::is_none).await;
    }

    /// Before connecting: the kept sign-in, restored from the registry when none is loaded.
    pub async fn restore(&self) {
        if self.manager.lock().await.is_some() {
            return;
        }
        match self.store.load_kept().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(upstream = %self.upstream, %error, "cannot read its kept sign-in");
                return;
            }
        }
        let record = self.store.record().await;
        let (Some(metadata), Some(credentials)) = (record.metadata, record.credentials) else {
            return;
        };
        let client = match (&record.client, self.config.client_id()) {
            (_, Some(id)) => self.configured_client(id, self.redirect_uri().ok()),
            (Some(registered), None) => registered_config(registered),
            (None, None) => OAuthClientConfig::new(credentials.client_id.clone(), self.url.clone()),
        };
        match self.manager_for(metadata, client).await {
            Ok(manager) => {
                *self.manager.lock().await = Some(manager);
                tracing::info!(upstream = %self.upstream, "signed in with its kept credentials");
            }
            Err(error) => {
                tracing::warn!(upstream = %self.upstream, %error, "cannot restore its sign-in")
            }
        }
    }

    /// The access token to send, refreshed when it is about to expire; `None` when there is
    /// none (the request goes without, and its 401 says how to sign in).
    ///
    /// Every request to the upstream awaits this. A fresh token is at hand without waiting;
    /// the rest (a lock, a refresh, a sign-in: several KB of future) is boxed, so that the
    /// future of every request does not carry it.
    pub async fn bearer(&self) -> Option<String> {
        if let Some(token) = self.token.load().as_ref()
            && Instant::now() < token.fresh_until
        {
            return Some(token.value.clone());
        }
        Box::pin(self.fetch_bearer()).await
    }

    /// [`Self::bearer`] when no fresh token is cached.
    async fn fetch_bearer(&self) -> Option<String> {
        let token = {
            let manager = self.manager.lock().await;
            match manager.as_ref() {
                Some(manager) => manager.get_access_token().await,
                None if self.config.grant == OAuthGrant::ClientCredentials => {
                    drop(manager);
                    return self.sign_in_as_client().await.ok();
                }
                None => return None,
            }
        };
        match token {
            Ok(token) => {
                self.cache(&token).await;
                Some(token)
            }
            Err(AuthError::AuthorizationRequired)
                if self.config.grant == OAuthGrant::ClientCredentials =>
            {
                self.sign_in_as_client().await.ok()
            }
            Err(AuthError::AuthorizationRequired) => {
                self.need(self.sign_in_hint("its sign-in expired and cannot be refreshed"));
                None
            }
            Err(error) => {
                // Most likely the authorization server is briefly out of reach: the token it
                // has may still do, and if not, the 401 tries the refresh again.
                tracing::warn!(upstream = %self.upstream, %error, "cannot refresh its access token for now");
                self.kept_token().await
            }
        }
    }

    /// The access token it holds, fresh or not.
    async fn kept_token(&self) -> Option<String> {
        use oauth2::TokenResponse;
        let record = self.store.record().await;
        let response = record.credentials?.token_response?;
        Some(response.access_token().secret().clone())
    }

    /// The upstream answered 401 (`challenge`) to a request sent with `sent`: a token to try
    /// once more with, or `None` (then it needs a sign-in).
    ///
    /// Its work is boxed, like [`Self::bearer`]'s slow way: the future of every request that
    /// might meet a 401 would otherwise carry it.
    pub async fn rejected(&self, sent: Option<&str>, challenge: &str) -> Option<String> {
        Box::pin(self.take_refusal(sent, challenge)).await
    }

    /// [`Self::rejected`].
    async fn take_refusal(&self, sent: Option<&str>, challenge: &str) -> Option<String> {
        *lock(&self.challenge) = Some(challenge.to_owned());
        // Another request, refused with the same token, may have refreshed it already.
        if let Some(current) = self.token.load().as_ref()
            && sent.is_some_and(|sent| sent != current.value)
        {
            return Some(current.value.clone());
        }
        self.token.store(None);
        if sent.is_some() {
            let refreshed = {
                let manager = self.manager.lock().await;
                match manager.as_ref() {
                    Some(manager) => Some(manager.refresh_token().await),
                    None => None,
                }
            };
            match refreshed {
                Some(Ok(response)) => {
                    use oauth2::TokenResponse;
                    let fresh = response.access_token().secret().clone();
                    if Some(fresh.as_str()) != sent {
                        self.cache(&fresh).await;
                        return Some(fresh);
                    }
                }
                Some(Err(AuthError::TokenRefreshFailed(why))) => {
                    // Not a refusal of the sign-in: the request fails, the next one tries
                    // again, and nobody is asked to sign in meanwhile.
                    tracing::warn!(upstream = %self.upstream, "its token was refused, and refreshing it failed for now: {why}");
                    return None;
                }
                Some(Err(error)) => {
                    tracing::info!(upstream = %self.upstream, %error, "its token was refused and cannot be refreshed");
                }
                None => {}
            }
        }
        if self.config.grant == OAuthGrant::ClientCredentials {
            match self.sign_in_as_client().await {
                Ok(token) => return Some(token),
                Err(error) => {
                    self.need(format!(
                        "it refused the gateway's client credentials: {error}"
                    ));
                    return None;
                }
            }
        }
        self.need(self.sign_in_hint("it asks for a sign-in"));
        None
    }

    /// A connection failed before any token was sent: unless it signs in by itself, it needs
    /// a first sign-in.
    pub fn needs_first_sign_in(&self) {
        if self.config.grant == OAuthGrant::AuthorizationCode {
            self.need(self.sign_in_hint("it has not been signed in yet"));
        }
    }

    /// The upstream answered 403 `insufficient_scope` (`challenge`): a sign-in for the wider
    /// scope is needed, unless [`MAX_STEP_UPS`] in a row did not help. Returns why the
    /// request failed.
    pub fn insufficient_scope(&self, challenge: &str) -> String {
        *lock(&self.challenge) = Some(challenge.to_owned());
        let scope = scope_of(challenge, &self.url).unwrap_or_default();
        let tries = {
            let mut last = lock(&self.step_ups);
            if last.0 == scope {
                last.1 += 1;
            } else {
                *last = (scope.clone(), 1);
            }
            last.1
        };
        if tries > MAX_STEP_UPS {
            return format!(
                "it needs scope {scope:?}, which {MAX_STEP_UPS} sign-ins in a row did not grant"
            );
        }
        let why = self.sign_in_hint(&format!("it needs a sign-in with scope {scope:?}"));
        self.need(why.clone());
        why
    }

    fn need(&self, why: String) {
        self.token.store(None);
        self.needed.send_if_modified(|needed| {
            let changed = needed.is_none();
            if changed {
                tracing::warn!(upstream = %self.upstream, "needs authorization: {why}");
                *needed = Some(why);
            }
            changed
        });
    }

    fn sign_in_hint(&self, why: &str) -> String {
        if self.owner.is_some() {
            return format!(
                "{why}: the user signs in at the address the gateway answers their next call with"
            );
        }
        format!(
            "{why}: an administrator signs it in with the console's Authorize button, or with POST /api/v1/mcp/services/{}/oauth/authorize and opens the URL it answers",
            self.upstream
        )
    }

    async fn new_manager(&self) -> Result<AuthorizationManager, SignInError> {
        super::http::use_our_tls_provider();
        // The operator named this upstream, so its authorization server may be on the same
        // private network; loopback still needs a loopback upstream (rmcp's rule).
        let mut manager = AuthorizationManager::new_allowing_private_addresses(self.url.as_str())
            .await
            .map_err(|error| format!("cannot reach its authorization server: {error}"))?;
        manager.set_credential_store(self.store.clone());
        Ok(manager)
    }

    async fn manager_for(
        &self,
        metadata: AuthorizationMetadata,
        client: OAuthClientConfig,
    ) -> Result<AuthorizationManager, SignInError> {
        let mut manager = self.new_manager().await?;
        manager.set_metadata(metadata);
        manager
            .configure_client(client)
            .map_err(|error| error.to_string())?;
        Ok(manager)
    }

    /// Keeps `token` for the hot path until shortly before it expires.
    async fn cache(&self, token: &str) {
        let record = self.store.record().await;
        let fresh_for = record
            .credentials
            .as_ref()
            .and_then(|credentials| {
                use oauth2::TokenResponse;
                let expires_in = credentials.token_response.as_ref()?.expires_in()?;
                let received = credentials.token_received_at?;
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |now| now.as_secs());
                let left = (received + expires_in.as_secs()).saturating_sub(now);
                // rmcp refreshes within min(30 s, half the lifetime) of the end: ask it then.
                let margin = (expires_in.as_secs() / 2).min(30);
                Some(Duration::from_secs(left.saturating_sub(margin)))
            })
            .unwrap_or(UNKNOWN_EXPIRY_RECHECK);
        self.token.store(Some(Arc::new(CachedToken {
            value: token.to_owned(),
            fresh_until: Instant::now() + fresh_for,
        })));
    }
}

/// The URL that names an upstream at `url` as an OAuth protected resource. A WebSocket
/// upstream's is its `http`/`https` twin: its handshake is an HTTP request there (RFC 6455
/// §3), authorization servers take such a URL as a `resource`, and its well-known documents
/// are fetched from it.
fn resource_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    let scheme = match parsed.scheme() {
        "ws" => "http",
        "wss" => "https",
        _ => return url.to_owned(),
    };
    match parsed.set_scheme(scheme) {
        Ok(()) => parsed.into(),
        Err(()) => url.to_owned(),
    }
}

/// The `scope` a `WWW-Authenticate` challenge names.
fn scope_of(challenge: &str, url: &str) -> Option<String> {
    let base = url::Url::parse(url).ok()?;
    WWWAuthenticateParams::parse(challenge, &base).scope
}

#[cfg(test)]
mod tests {
    use super::resource_url;

    #[test]
    fn a_websocket_upstream_is_the_resource_at_its_http_twin() {
        assert_eq!(resource_url("ws://127.0.0.1:9/ws"), "http://127.0.0.1:9/ws");
        assert_eq!(
            resource_url("wss://mcp.example/ws?x=1"),
            "https://mcp.example/ws?x=1"
        );
        assert_eq!(
            resource_url("https://mcp.example/mcp"),
            "https://mcp.example/mcp"
        );
    }
}
