//! Signing an upstream in: the browser's way (an administrator opens the authorization URL,
//! the callback finishes it) and the client credentials grant; and signing it out.

use std::sync::Arc;

use rmcp::transport::auth::{
    AuthorizationManager, AuthorizationMetadata, ClientCredentialsConfig, OAuthClientConfig,
};

use super::{
    CLIENT_NAME, SignInError, UpstreamAuth,
    assertion::{Assertion, TokenRequest},
    scope_of,
    store::RegisteredClient,
};
use crate::{
    config::{OAuthGrant, TokenEndpointAuthMethod},
    sync::lock,
};

impl UpstreamAuth {
    /// Starts a sign-in: the URL of the authorization server's page to open in a browser.
    /// With `browser` (the id a user's browser holds in its cookie), only that browser's
    /// callback finishes it.
    pub async fn begin(self: &Arc<Self>, browser: Option<&str>) -> Result<String, SignInError> {
        if self.config.grant == OAuthGrant::ClientCredentials {
            return Err("this upstream signs in with client credentials, by itself".into());
        }
        let redirect_uri = self.redirect_uri()?;
        let challenge = lock(&self.challenge).clone();
        let (mut manager, metadata) = self.discover().await?;
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
            let asked = challenge
                .as_deref()
                .and_then(|challenge| scope_of(challenge, &self.url));
            configured_and_asked(&self.config.scopes, asked.as_deref())
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
        self.vault.expect(state, self, browser);
        Ok(url)
    }

    /// A new manager, and the upstream's authorization server found from its latest challenge
    /// (or its well-known metadata), which the manager is set to.
    async fn discover(&self) -> Result<(AuthorizationManager, AuthorizationMetadata), SignInError> {
        let challenge = lock(&self.challenge).clone();
        let mut manager = self.new_manager().await?;
        let resolution = manager
            .resolve_metadata_from_challenge(challenge.as_deref())
            .await
            .map_err(|error| format!("cannot discover its authorization server: {error}"))?;
        manager.set_metadata(resolution.metadata.clone());
        Ok((manager, resolution.metadata))
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

    pub(super) fn redirect_uri(&self) -> Result<String, SignInError> {
        self.vault.redirect_uri().ok_or_else(|| {
            "the gateway does not listen on HTTP here, so no browser can come back to it: sign in through `mcps serve`".into()
        })
    }

    pub(super) fn configured_client(
        &self,
        id: &str,
        redirect_uri: Option<String>,
    ) -> OAuthClientConfig {
        let mut client =
            OAuthClientConfig::new(id, redirect_uri.unwrap_or_else(|| self.url.clone()));
        if let Some(secret) = self.config.client_secret() {
            client = client.with_client_secret(secret);
        }
        client
    }

    /// The client to sign in as: the configured one, a client metadata document where the
    /// server takes one (the operator's, else the gateway's own), else one registered (again
    /// only at a new server).
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
        // The operator's published document, else the gateway's own (under an https URL).
        let document = self
            .config
            .client_metadata_url()
            .map(str::to_owned)
            .or_else(|| self.vault.own_client_metadata_url());
        if let Some(document) = document
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

    /// `grant: client_credentials`: a token for the gateway itself, authenticated by its
    /// secret or, with `private_key_jwt`, by an assertion its key signs.
    pub(super) async fn sign_in_as_client(&self) -> Result<String, SignInError> {
        let Some(client_id) = self.config.client_id() else {
            return Err("client_credentials needs client_id".into());
        };
        let (mut manager, metadata) = self.discover().await?;
        if self.config.auth_method() == TokenEndpointAuthMethod::PrivateKeyJwt {
            let key_file = self
                .key_dir
                .join(self.config.private_key_file().unwrap_or_default());
            let assertion = Assertion::load(&key_file, self.config.signing_algorithm())?;
            // RFC 7523bis: the audience is the authorization server's issuer identifier.
            let audience = metadata
                .issuer
                .clone()
                .unwrap_or_else(|| metadata.token_endpoint.clone());
            let credentials = assertion
                .exchange(&TokenRequest {
                    token_endpoint: &metadata.token_endpoint,
                    audience: &audience,
                    client_id,
                    scopes: &self.config.scopes,
                    resource: &self.url,
                })
                .await?;
            manager
                .configure_client(OAuthClientConfig::new(client_id, self.url.clone()))
                .map_err(|error| error.to_string())?;
            self.store
                .update(|kept| kept.credentials = Some(credentials))
                .await?;
        } else {
            let Some(client_secret) = self.config.client_secret() else {
                return Err("client_credentials needs client_secret".into());
            };
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
        }
        let token = manager
            .get_access_token()
            .await
            .map_err(|error| error.to_string())?;
        self.store
            .update(|kept| kept.metadata = Some(metadata))
            .await?;
        *self.manager.lock().await = Some(manager);
        self.cache(&token).await;
        self.needed.send_replace(None);
        Ok(token)
    }
}

pub(super) fn registered_config(registered: &RegisteredClient) -> OAuthClientConfig {
    let mut client = OAuthClientConfig::new(
        registered.client_id.clone(),
        registered.redirect_uri.clone(),
    );
    if let Some(secret) = &registered.client_secret {
        client = client.with_client_secret(secret.clone());
    }
    client
}

/// The configured scopes, and whatever more a 403 asked for (a step-up), each once, in that
/// order.
fn configured_and_asked(configured: &[String], asked: Option<&str>) -> Vec<String> {
    let mut scopes = configured.to_vec();
    for scope in asked.unwrap_or_default().split_whitespace() {
        if !scopes.iter().any(|have| have == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_widens_the_configured_scopes_without_repeating_one() {
        let configured = vec!["read".to_owned(), "offline_access".to_owned()];
        assert_eq!(configured_and_asked(&configured, None), configured);
        assert_eq!(
            configured_and_asked(&configured, Some("read  write admin")),
            ["read", "offline_access", "write", "admin"]
        );
        assert_eq!(configured_and_asked(&[], Some("write")), ["write"]);
    }
}
