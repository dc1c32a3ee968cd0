//! Clients signed in through the organisation's identity provider (`auth.oauth`): the
//! gateway is an OAuth protected resource (RFC 9728). It publishes its metadata, answers a
//! missing or bad token with a `WWW-Authenticate` challenge that points to it, and checks JWT
//! access tokens against the issuer's published keys: signature, `iss`, `aud`, `exp`, `nbf`
//! and the scopes it requires. Keys are cached, and fetched again when a token names one the
//! cache does not hold (the issuer rotated its keys), at most once a second.
//!
//! A client's token is never sent on to an upstream: it proves who calls the gateway, and the
//! gateway signs in to upstreams with its own credentials.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;

use super::{Lease, Principal};
use crate::{config::ResourceServerConfig, sync::lock};

/// The least time between two fetches of the issuer's keys.
const REFETCH_AFTER: Duration = Duration::from_secs(1);

/// How many checked tokens are remembered (see [`IdentityProvider::verify`]).
const VERIFIED_KEPT: usize = 4096;

/// Why a request's token was not accepted: what goes in the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, or one that is not valid (`error="invalid_token"` when there was one).
    Unauthorized(Option<String>),
    /// 403: a valid token without the scopes the gateway requires.
    InsufficientScope,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unauthorized(None) => f.write_str("there is no token"),
            Self::Unauthorized(Some(why)) => f.write_str(why),
            Self::InsufficientScope => f.write_str("the token lacks a scope the gateway requires"),
        }
    }
}

/// Checks the JWT access tokens of one issuer, for the gateway as one resource.
pub struct IdentityProvider {
    config: ResourceServerConfig,
    /// The URL of the gateway's protected resource metadata.
    metadata_url: String,
    http: reqwest::Client,
    keys: Mutex<Keys>,
    issuer_metadata: Mutex<Option<IssuerMetadata>>,
    /// Tokens that passed every check, by their SHA-256.
    verified: std::sync::Mutex<HashMap<[u8; 32], Verified>>,
}

/// A token that passed every check.
struct Verified {
    principal: Principal,
    /// Milliseconds since the Unix epoch.
    until: i64,
    /// The key it was signed with: when the issuer stops publishing it, the token is checked
    /// again (and refused).
    kid: String,
}

#[derive(Default)]
struct Keys {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
    jwks_url: Option<String>,
}

/// What the gateway reads of the issuer's metadata (OpenID discovery or RFC 8414).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct IssuerMetadata {
    pub jwks_uri: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: i64,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

/// The algorithms of asymmetric keys a JWKS may publish. Never `HS*` (the key would be a
/// shared secret) and never `none`.
const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl IdentityProvider {
    /// The checker of `config`'s tokens, for a gateway reached at `public_url`.
    pub fn new(config: ResourceServerConfig, public_url: &str) -> Result<Self, String> {
        // The TLS provider every outbound connection of the gateway uses; idempotent.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let path = url::Url::parse(&config.audience)
            .map(|url| url.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let metadata_url = format!(
            "{}/.well-known/oauth-protected-resource{path}",
            public_url.trim_end_matches('/')
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Self {
            config,
            metadata_url,
            http,
            keys: Mutex::default(),
            issuer_metadata: Mutex::default(),
            verified: std::sync::Mutex::default(),
        })
    }

    /// The protected resource metadata document (RFC 9728 §2).
    pub fn metadata(&self) -> serde_json::Value {
        let mut document = json!({
            "resource": self.config.audience,
            "authorization_servers": [self.config.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "MCPS.ONE gateway",
        });
        if !self.config.scopes.is_empty() {
            document["scopes_supported"] = json!(self.config.scopes);
        }
        document
    }

    /// Whether `path` is where the metadata document is served.
    pub fn serves_metadata_at(&self, path: &str) -> bool {
        path == "/.well-known/oauth-protected-resource"
            || path.starts_with("/.well-known/oauth-protected-resource/")
    }

    /// The `WWW-Authenticate` value of `refusal`.
    pub fn challenge(&self, refusal: &Refusal) -> String {
        let mut value = format!("Bearer resource_metadata=\"{}\"", self.metadata_url);
        match refusal {
            Refusal::Unauthorized(None) => {}
            Refusal::Unauthorized(Some(why)) => {
                let why = why.replace(['"', '\\'], "'");
                value.push_str(&format!(
                    ", error=\"invalid_token\", error_description=\"{why}\""
                ));
            }
            Refusal::InsufficientScope => {
                value.push_str(", error=\"insufficient_scope\"");
            }
        }
        if !self.config.scopes.is_empty() {
            value.push_str(&format!(", scope=\"{}\"", self.config.scopes.join(" ")));
        }
        value
    }

    /// Whether `token` looks like a JWT (three base64url parts), and so is ours to check.
    pub fn is_jwt(token: &str) -> bool {
        token.split('.').count() == 3
    }

    /// Who `token` signs in, and until when. A client sends its token with every request:
    /// one that passed every check is remembered until it expires rather than checked again
    /// (its signature costs more than the rest of a request). Nothing here can revoke an
    /// access token, so this accepts exactly what checking again would.
    pub async fn verify(&self, token: &str) -> Result<(Principal, Lease), Refusal> {
        let hash = super::secret_hash(token);
        let now = crate::registry::now_ms();
        if let Some(known) = lock(&self.verified).get(&hash)
            && known.until > now
        {
            return Ok((known.principal.clone(), Lease::until(known.until)));
        }
        let (principal, until, kid) = self.check(token).await?;
        let mut verified = lock(&self.verified);
        if verified.len() >= VERIFIED_KEPT {
            verified.retain(|_, known| known.until > now);
            if verified.len() >= VERIFIED_KEPT {
                verified.clear();
            }
        }
        let known = Verified {
            principal: principal.clone(),
            until,
            kid,
        };
        verified.insert(hash, known);
        Ok((principal, Lease::until(until)))
    }

    /// Checks `token` whole: who it signs in, until when (milliseconds since the Unix epoch),
    /// and the key it was signed with.
    async fn check(&self, token: &str) -> Result<(Principal, i64, String), Refusal> {
        let invalid = |why: &str| Refusal::Unauthorized(Some(why.to_owned()));
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is not a JWT"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(invalid("the token's algorithm is not accepted"));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token names no key (kid)"))?;
        let key = self
            .key(&kid)
            .await?
            .ok_or_else(|| invalid("the token's key is not among the issuer's keys"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 30;
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|error| invalid(&describe(&error)))?
            .claims;
        let granted: Vec<String> = match (claims.scope, claims.scp) {
            (Some(scope), _) => scope.split_whitespace().map(str::to_owned).collect(),
            (None, Some(scp)) => scp,
            (None, None) => Vec::new(),
        };
        if self
            .config
            .scopes
            .iter()
            .any(|needed| !granted.contains(needed))
        {
            return Err(Refusal::InsufficientScope);
        }
        let subject = claims
            .sub
            .ok_or_else(|| invalid("the token names no subject (sub)"))?;
        let principal = Principal {
            user_id: -1,
            token_id: subject_id(&self.config.issuer, &subject),
            username: subject,
            is_admin: false,
            key_name: None,
            virtual_server: None,
        };
        Ok((principal, claims.exp.saturating_mul(1000), kid))
    }

    /// The key `kid`, fetching the issuer's keys again when it is unknown.
    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, Refusal> {
        let mut keys = self.keys.lock().await;
        if let Some(found) = keys.set.as_ref().and_then(|set| set.find(kid)) {
            return Ok(DecodingKey::from_jwk(found).ok());
        }
        if keys
            .fetched
            .is_some_and(|fetched| fetched.elapsed() < REFETCH_AFTER)
        {
            return Ok(None);
        }
        keys.fetched = Some(Instant::now());
        match self.fetch(&mut keys).await {
            Ok(set) => {
                // Tokens signed with a key the issuer no longer publishes are checked again.
                lock(&self.verified).retain(|_, known| set.find(&known.kid).is_some());
                let found = set
                    .find(kid)
                    .and_then(|jwk| DecodingKey::from_jwk(jwk).ok());
                keys.set = Some(set);
                Ok(found)
            }
            Err(why) => {
                tracing::warn!(issuer = %self.config.issuer, "cannot read the issuer's keys: {why}");
                Err(Refusal::Unauthorized(Some(
                    "the issuer's keys cannot be read now".into(),
                )))
            }
        }
    }

    async fn fetch(&self, keys: &mut Keys) -> Result<JwkSet, String> {
        let url = match (&self.config.jwks_url, &keys.jwks_url) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => {
                let url =
                    self.issuer_metadata().await?.jwks_uri.ok_or(
                        "its metadata names no jwks_uri (set auth.oauth.jwks_url)".to_owned(),
                    )?;
                keys.jwks_url = Some(url.clone());
                url
            }
        };
        self.get_json(&url).await
    }

    /// The issuer's metadata: OpenID discovery, then RFC 8414 (path inserted after the
    /// well-known prefix). Read once, then kept.
    pub(super) async fn issuer_metadata(&self) -> Result<IssuerMetadata, String> {
        let mut kept = self.issuer_metadata.lock().await;
        if let Some(metadata) = kept.as_ref() {
            return Ok(metadata.clone());
        }
        let issuer = self.config.issuer.trim_end_matches('/');
        let parsed = url::Url::parse(issuer).map_err(|error| error.to_string())?;
        let origin = parsed.origin().ascii_serialization();
        let path = parsed.path().trim_end_matches('/');
        let candidates = [
            format!("{issuer}/.well-known/openid-configuration"),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
        ];
        let mut why = String::new();
        for candidate in candidates {
            match self.get_json::<IssuerMetadata>(&candidate).await {
                Ok(metadata) => return Ok(kept.insert(metadata).clone()),
                Err(error) => why = error,
            }
        }
        Err(format!("its metadata cannot be read: {why}"))
    }

    /// What the gateway asks of the provider about itself.
    pub(super) fn config(&self) -> &ResourceServerConfig {
        &self.config
    }

    /// The client the gateway reaches the provider with: no redirects followed.
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|error| crate::error::cannot_send(&error))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered HTTP {}", response.status()));
        }
        response
            .json()
            .await
            .map_err(|error| format!("{url}: {error}"))
    }
}

/// The credential id of the identity provider's user `subject`: sessions belong to it and
/// count against it, as they do to an API key's id. Negative, so it never meets the
/// registry's ids; the same for every token of one user, different for another.
fn subject_id(issuer: &str, subject: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(issuer.as_bytes())
        .chain_update([0])
        .chain_update(subject.as_bytes())
        .finalize();
    let bits = u64::from_le_bytes(digest[..8].try_into().expect("eight bytes")) >> 1;
    -1 - i64::try_from(bits).expect("63 bits fit")
}

/// Why a token failed its checks, in a client's words.
fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".into(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "the token is for another resource (aud)".into(),
        ErrorKind::InvalidIssuer => "the token is from another issuer (iss)".into(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        _ => "the token is not valid".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_of_the_identity_provider_is_a_credential_of_its_own() {
        let alice = subject_id("https://idp", "alice");
        assert!(alice < 0);
        assert_eq!(alice, subject_id("https://idp", "alice"));
        assert_ne!(alice, subject_id("https://idp", "bob"));
        assert_ne!(alice, subject_id("https://other", "alice"));
    }
}
