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

mod store;
pub mod vault;

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwapOption;
use rmcp::transport::auth::{
    AuthError, AuthorizationManager, AuthorizationMetadata, ClientCredentialsConfig,
    OAuthClientConfig, WWWAuthenticateParams,
};
use tokio::sync::{Mutex, watch};

use self::store::{RegisteredClient, SealedStore};
pub use self::vault::OAuthVault;
use crate::{
    config::{OAuthConfig, OAuthGrant},
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

/// One upstream's sign-in.
pub struct UpstreamAuth {
    upstream: Arc<str>,
    url: String,
    config: OAuthConfig,
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
    pub fn new(upstream: &str, url: &str, config: OAuthConfig, vault: Arc<OAuthVault>) -> Self {
        let upstream: Arc<str> = Arc::from(upstream);
        Self {
            store: SealedStore::new(upstream.clone(), vault.clone()),
            upstream,
            url: url.to_owned(),
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

    pub fn grant(&self) -> OAuthGrant {
        self.config.grant
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
    pub async fn bearer(&self) -> Option<String> {
        if let Some(token) = self.token.load().as_ref()
            && Instant::now() < token.fresh_until
        {
            return Some(token.value.clone());
        }
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
                tracing::warn!(upstream = %self.upstream, %error, "cannot get an access token");
                None
            }
        }
    }

    /// The upstream answered 401 (`challenge`) to a request sent with `sent`: a token to try
    /// once more with, or `None` (then it needs a sign-in).
    pub async fn rejected(&self, sent: Option<&str>, challenge: &str) -> Option<String> {
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

    /// Starts a sign-in: the URL of the authorization server's page to open in a browser.
    pub async fn begin(self: &Arc<Self>) -> Result<String, SignInError> {
        if self.config.grant == OAuthGrant::ClientCredentials {
            return Err("this upstream signs in with client credentials, by itself".into());
        }
        let redirect_uri = self.redirect_uri()?;
        let challenge = lock(&self.challenge).clone();
        let mut manager = self.new_manager().await?;
        let resolution = manager
            .resolve_metadata_from_challenge(challenge.as_deref())
            .await
            .map_err(|error| format!("cannot discover its authorization server: {error}"))?;
        let metadata = resolution.metadata;
        manager.set_metadata(metadata.clone());
        let record = self.store.record().await;
        let same_server = record
            .metadata
            .as_ref()
            .is_some_and(|kept| kept.issuer == metadata.issuer);
        // A wider sign-in keeps what was granted (SEP-2350); a new server starts over.
        let granted = record
            .credentials
            .as_ref()
            .filter(|_| same_server)
            .map(|credentials| credentials.granted_scopes.join(" "))
            .filter(|scopes| !scopes.is_empty());
        let scopes = if self.config.scopes.is_empty() {
            manager.select_scopes(granted.as_deref(), &[])
        } else {
            self.config.scopes.clone()
        };
        let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let client = self
            .client_for(&mut manager, &metadata, &redirect_uri, &scope_refs)
            .await?;
        manager
            .configure_client(client)
            .map_err(|error| format!("cannot use the client: {error}"))?;
        let url = manager
            .get_authorization_url(&scope_refs)
            .await
            .map_err(|error| format!("cannot make the authorization URL: {error}"))?;
        let state = url::Url::parse(&url)
            .ok()
            .and_then(|url| {
                url.query_pairs()
                    .find(|(key, _)| key == "state")
                    .map(|(_, value)| value.into_owned())
            })
            .ok_or("the authorization URL has no state")?;
        self.store
            .update(|kept| {
                if !same_server {
                    kept.credentials = None;
                }
                kept.metadata = Some(metadata);
            })
            .await?;
        *self.pending.lock().await = Some((state.clone(), manager));
        self.vault.expect(state, self);
        Ok(url)
    }

    /// Finishes the sign-in `state` named, with the authorization server's answer.
    pub async fn finish(
        &self,
        state: &str,
        code: &str,
        issuer: Option<&str>,
    ) -> Result<(), SignInError> {
        let Some((expected, manager)) = self.pending.lock().await.take() else {
            return Err("no sign-in is under way for it".into());
        };
        if expected != state {
            return Err("a newer sign-in replaced this one: use its URL".into());
        }
        manager
            .exchange_code_for_token_with_issuer(code, state, issuer)
            .await
            .map_err(|error| format!("the authorization server's answer was refused: {error}"))?;
        *self.manager.lock().await = Some(manager);
        self.token.store(None);
        self.needed.send_replace(None);
        tracing::info!(upstream = %self.upstream, "signed in");
        Ok(())
    }

    /// Forgets the sign-in: tokens and registered client.
    pub async fn sign_out(&self) -> Result<(), SignInError> {
        *self.manager.lock().await = None;
        self.token.store(None);
        self.store.forget().await?;
        self.need(self.sign_in_hint("it was signed out"));
        Ok(())
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
        format!(
            "{why}: an administrator signs it in with POST /api/v1/mcp/services/{}/oauth/authorize and opens the URL it answers",
            self.upstream
        )
    }

    fn redirect_uri(&self) -> Result<String, SignInError> {
        self.vault.redirect_uri().ok_or_else(|| {
            "the gateway does not listen on HTTP here, so no browser can come back to it: sign in through `mcps serve`".into()
        })
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

    fn configured_client(&self, id: &str, redirect_uri: Option<String>) -> OAuthClientConfig {
        let mut client =
            OAuthClientConfig::new(id, redirect_uri.unwrap_or_else(|| self.url.clone()));
        if let Some(secret) = self.config.client_secret() {
            client = client.with_client_secret(secret);
        }
        client
    }

    /// The client to sign in as: the configured one, the published metadata document where
    /// the server takes one, else one registered (again only at a new server).
    async fn client_for(
        &self,
        manager: &mut AuthorizationManager,
        metadata: &AuthorizationMetadata,
        redirect_uri: &str,
        scopes: &[&str],
    ) -> Result<OAuthClientConfig, SignInError> {
        if let Some(id) = self.config.client_id() {
            return Ok(self.configured_client(id, Some(redirect_uri.to_owned())));
        }
        let takes_documents = metadata
            .additional_fields
            .get("client_id_metadata_document_supported")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        if let Some(document) = self.config.client_metadata_url()
            && takes_documents
        {
            return Ok(OAuthClientConfig::new(document, redirect_uri));
        }
        if let Some(registered) = self.store.record().await.client
            && registered.issuer == metadata.issuer
            && registered.redirect_uri == redirect_uri
        {
            return Ok(registered_config(&registered));
        }
        let client = manager
            .register_client(CLIENT_NAME, redirect_uri, scopes)
            .await
            .map_err(|error| format!("cannot register the gateway as a client: {error}"))?;
        let registered = RegisteredClient {
            client_id: client.client_id.clone(),
            client_secret: client.client_secret.clone(),
            issuer: metadata.issuer.clone(),
            redirect_uri: redirect_uri.to_owned(),
        };
        self.store
            .update(|kept| kept.client = Some(registered))
            .await?;
        Ok(client)
    }

    /// `grant: client_credentials`: a token for the gateway itself.
    async fn sign_in_as_client(&self) -> Result<String, SignInError> {
        let (Some(client_id), Some(client_secret)) =
            (self.config.client_id(), self.config.client_secret())
        else {
            return Err("client_credentials needs client_id and client_secret".into());
        };
        let challenge = lock(&self.challenge).clone();
        let mut manager = self.new_manager().await?;
        let resolution = manager
            .resolve_metadata_from_challenge(challenge.as_deref())
            .await
            .map_err(|error| format!("cannot discover its authorization server: {error}"))?;
        manager.set_metadata(resolution.metadata.clone());
        let credentials = ClientCredentialsConfig::ClientSecret {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scopes: self.config.scopes.clone(),
            resource: Some(self.url.clone()),
        };
        manager
            .configure_client_credentials(&credentials)
            .map_err(|error| error.to_string())?;
        manager
            .exchange_client_credentials(&credentials)
            .await
            .map_err(|error| error.to_string())?;
        let token = manager
            .get_access_token()
            .await
            .map_err(|error| error.to_string())?;
        self.store
            .update(|kept| kept.metadata = Some(resolution.metadata))
            .await?;
        *self.manager.lock().await = Some(manager);
        self.cache(&token).await;
        self.needed.send_replace(None);
        Ok(token)
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

fn registered_config(registered: &RegisteredClient) -> OAuthClientConfig {
    let mut client = OAuthClientConfig::new(
        registered.client_id.clone(),
        registered.redirect_uri.clone(),
    );
    if let Some(secret) = &registered.client_secret {
        client = client.with_client_secret(secret.clone());
    }
    client
}

/// The `scope` a `WWW-Authenticate` challenge names.
fn scope_of(challenge: &str, url: &str) -> Option<String> {
    let base = url::Url::parse(url).ok()?;
    WWWAuthenticateParams::parse(challenge, &base).scope
}
