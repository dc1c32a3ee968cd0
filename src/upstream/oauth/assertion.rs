//! `token_endpoint_auth_method: private_key_jwt` with the client credentials grant (RFC 7523,
//! the MCP extension SEP-1046): the gateway proves it is the client with a short-lived JWT
//! signed by its own key, not with a shared secret.
//!
//! rmcp's version of this (`auth-client-credentials-jwt`) signs with aws-lc, whose C build
//! would cost every build minutes; jsonwebtoken 9 signs with ring, which rustls builds
//! already. The request is small enough to make here.

use std::{
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::transport::auth::{OAuthTokenResponse, StoredCredentials};
use serde::Serialize;

use crate::security::post_form;

/// What RFC 7523 calls the client assertion's type.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is good for: it is used at once, once.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// The time a token request may take.
const REQUEST_TIME: Duration = Duration::from_secs(30);

/// One token request's assertion, signed.
pub(super) struct Assertion {
    key: EncodingKey,
    algorithm: Algorithm,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Where a token request goes, and what it asks for.
pub(super) struct TokenRequest<'a> {
    pub token_endpoint: &'a str,
    /// The authorization server's issuer: the assertion's audience.
    pub audience: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    /// The upstream (RFC 8707).
    pub resource: &'a str,
}

impl Assertion {
    /// Reads the PEM key at `path`, for `algorithm` (one of `SIGNING_ALGORITHMS`).
    pub fn load(path: &Path, algorithm: &str) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|error| format!("cannot read its private key {}: {error}", path.display()))?;
        let algorithm: Algorithm = algorithm
            .parse()
            .map_err(|_| format!("unknown signing algorithm {algorithm:?}"))?;
        let key = match algorithm {
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .map_err(|error| {
            format!(
                "its private key {} is not a {algorithm:?} key in PEM: {error}",
                path.display()
            )
        })?;
        Ok(Self { key, algorithm })
    }

    /// Asks the token endpoint for a token, authenticated by a fresh assertion.
    pub async fn exchange(&self, request: &TokenRequest<'_>) -> Result<StoredCredentials, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |now| now.as_secs());
        let claims = Claims {
            iss: request.client_id,
            sub: request.client_id,
            aud: request.audience,
            iat: now,
            exp: now + ASSERTION_LIFETIME.as_secs(),
            jti: crate::security::random_id(),
        };
        let assertion = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.key)
            .map_err(|error| format!("cannot sign the client assertion: {error}"))?;
        let scopes = request.scopes.join(" ");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &assertion),
            ("resource", request.resource),
        ];
        if !scopes.is_empty() {
            form.push(("scope", &scopes));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIME)
            .build()
            .map_err(|error| error.to_string())?;
        let token: OAuthTokenResponse = post_form(http.post(request.token_endpoint), &form).await?;
        use oauth2::TokenResponse;
        let granted_scopes = token
            .scopes()
            .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect())
            .unwrap_or_default();
        Ok(StoredCredentials::new(
            request.client_id.to_owned(),
            Some(token),
            granted_scopes,
            Some(now),
        )
        .with_issuer(Some(request.audience.to_owned())))
    }
}
