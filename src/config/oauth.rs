//! An upstream's `oauth:` block: the gateway signs in to the upstream as an OAuth client, per
//! the MCP authorization spec. Present, even empty (`oauth: {}`), means the upstream is
//! reached with an access token; everything not set is discovered from the upstream.

use serde::{Deserialize, Serialize};

/// How the gateway signs in to one upstream.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// `authorization_code` (an operator or user signs in through a browser, once) or
    /// `client_credentials` (the gateway signs in as itself, no browser).
    #[serde(default)]
    pub grant: OAuthGrant,
    /// A client registered with the authorization server beforehand. Without one, the
    /// gateway uses `client_metadata_url` where the server accepts it, else registers itself
    /// (RFC 7591). Empty counts as unset, so `${VAR:}` may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The pre-registered client's secret. Never logged, never shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// How the client authenticates at the token endpoint; by default `client_secret_basic`
    /// with a secret, `none` without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    /// The scopes to ask for; empty: the ones the upstream's 401 names, else all the ones its
    /// metadata lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// An https URL where the gateway's client metadata document is published (a Client ID
    /// Metadata Document): the client id at servers that accept one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_metadata_url: Option<String>,
    /// With `token_endpoint_auth_method: private_key_jwt`: the PEM file (PKCS#8) of the key
    /// the gateway signs its client assertions with (RFC 7523), relative to the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<String>,
    /// The algorithm of `private_key_file`'s key: `ES256` (the default), `ES384`, `RS256`,
    /// `RS384`, `RS512`, `PS256`, `PS384`, `PS512` or `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_algorithm: Option<String>,
    /// `shared`: one token for the gateway; `per-user`: each principal signs in for itself.
    #[serde(default)]
    pub credentials: CredentialsScope,
}

/// The OAuth grant the gateway uses.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthGrant {
    #[default]
    AuthorizationCode,
    ClientCredentials,
}

/// How the client authenticates at the token endpoint (RFC 7591's names).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with `private_key_file` (RFC 7523); with `grant: client_credentials`.
    PrivateKeyJwt,
    None,
}

/// The algorithms `signing_algorithm` may name.
pub const SIGNING_ALGORITHMS: [&str; 9] = [
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// Whose token serves a call.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialsScope {
    /// One token, one connection, for every caller.
    #[default]
    Shared,
    /// A token and a connection for each principal.
    PerUser,
}

impl OAuthConfig {
    /// The pre-registered client id, if one is set (empty is unset).
    pub fn client_id(&self) -> Option<&str> {
        non_empty(self.client_id.as_deref())
    }

    /// The pre-registered client's secret, if one is set (empty is unset).
    pub fn client_secret(&self) -> Option<&str> {
        non_empty(self.client_secret.as_deref())
    }

    /// The published client metadata document's URL, if one is set (empty is unset).
    pub fn client_metadata_url(&self) -> Option<&str> {
        non_empty(self.client_metadata_url.as_deref())
    }

    /// The method in effect at the token endpoint.
    pub fn auth_method(&self) -> TokenEndpointAuthMethod {
        self.token_endpoint_auth_method.unwrap_or({
            if self.client_secret().is_some() {
                TokenEndpointAuthMethod::ClientSecretBasic
            } else {
                TokenEndpointAuthMethod::None
            }
        })
    }

    /// What is wrong with this block, as (key under `oauth`, why).
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if self.credentials == CredentialsScope::PerUser
            && self.grant == OAuthGrant::ClientCredentials
        {
            return Some((
                "credentials",
                "per-user credentials are each user's own sign-in: they need \
                 `grant: authorization_code`"
                    .into(),
            ));
        }
        if self.client_secret().is_some() && self.client_id().is_none() {
            return Some((
                "client_secret",
                "a client secret needs the `client_id` it belongs to".into(),
            ));
        }
        let method = self.auth_method();
        if let Some(problem) = self.private_key_problem(method) {
            return Some(problem);
        }
        if matches!(
            method,
            TokenEndpointAuthMethod::ClientSecretBasic | TokenEndpointAuthMethod::ClientSecretPost
        ) && self.client_id().is_some()
            && self.client_secret().is_none()
        {
            return Some((
                "token_endpoint_auth_method",
                "client_secret_basic and client_secret_post need `client_secret`".into(),
            ));
        }
        if self.grant == OAuthGrant::ClientCredentials
            && method != TokenEndpointAuthMethod::PrivateKeyJwt
            && (self.client_id().is_none() || self.client_secret().is_none())
        {
            return Some((
                "grant",
                "client_credentials needs `client_id` and `client_secret` (or \
                 `token_endpoint_auth_method: private_key_jwt` with `private_key_file`)"
                    .into(),
            ));
        }
        if let Some(url) = self.client_metadata_url() {
            let parsed: Option<http::Uri> = url.parse().ok();
            let https_with_path = parsed.is_some_and(|uri| {
                uri.scheme_str() == Some("https") && uri.host().is_some() && uri.path().len() > 1
            });
            if !https_with_path {
                return Some((
                    "client_metadata_url",
                    format!("{url:?} must be an https URL with a path"),
                ));
            }
        }
        None
    }
}

impl OAuthConfig {
    /// The key file of `private_key_jwt`, if one is set (empty is unset).
    pub fn private_key_file(&self) -> Option<&str> {
        non_empty(self.private_key_file.as_deref())
    }

    /// The algorithm of the `private_key_jwt` key.
    pub fn signing_algorithm(&self) -> &str {
        non_empty(self.signing_algorithm.as_deref()).unwrap_or("ES256")
    }

    fn private_key_problem(
        &self,
        method: TokenEndpointAuthMethod,
    ) -> Option<(&'static str, String)> {
        if method != TokenEndpointAuthMethod::PrivateKeyJwt {
            return self.private_key_file().map(|_| {
                (
                    "private_key_file",
                    "a key file is for `token_endpoint_auth_method: private_key_jwt`".into(),
                )
            });
        }
        if self.grant != OAuthGrant::ClientCredentials {
            return Some((
                "token_endpoint_auth_method",
                "private_key_jwt is supported with `grant: client_credentials`".into(),
            ));
        }
        if self.client_id().is_none() || self.private_key_file().is_none() {
            return Some((
                "token_endpoint_auth_method",
                "private_key_jwt needs `client_id` and `private_key_file`".into(),
            ));
        }
        if !SIGNING_ALGORITHMS.contains(&self.signing_algorithm()) {
            return Some((
                "signing_algorithm",
                format!(
                    "{:?} is not one of {}",
                    self.signing_algorithm(),
                    SIGNING_ALGORITHMS.join(", ")
                ),
            ));
        }
        None
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> OAuthConfig {
        serde_yaml::from_str(yaml).expect("parses")
    }

    #[test]
    fn an_empty_block_discovers_everything() {
        let config = parse("{}");
        assert_eq!(config.grant, OAuthGrant::AuthorizationCode);
        assert_eq!(config.auth_method(), TokenEndpointAuthMethod::None);
        assert!(config.problem().is_none());
    }

    #[test]
    fn empty_strings_from_unset_variables_count_as_unset() {
        let config = parse("client_id: ''\nclient_secret: ''\nclient_metadata_url: ''");
        assert!(config.client_id().is_none());
        assert!(config.problem().is_none());
    }

    #[test]
    fn inconsistent_blocks_are_named() {
        let problem =
            |yaml: &str| -> Option<&'static str> { parse(yaml).problem().map(|(key, _)| key) };
        assert_eq!(problem("client_secret: s"), Some("client_secret"));
        assert_eq!(problem("grant: client_credentials"), Some("grant"));
        assert_eq!(
            problem("client_id: a\ntoken_endpoint_auth_method: client_secret_post"),
            Some("token_endpoint_auth_method")
        );
        assert_eq!(
            problem("client_metadata_url: http://h/c.json"),
            Some("client_metadata_url")
        );
        assert_eq!(problem("credentials: per-user"), None);
        let jwt =
            "grant: client_credentials\nclient_id: a\ntoken_endpoint_auth_method: private_key_jwt";
        assert_eq!(problem(jwt), Some("token_endpoint_auth_method"));
        assert_eq!(problem(&format!("{jwt}\nprivate_key_file: k.pem")), None);
        assert_eq!(
            problem(&format!(
                "{jwt}\nprivate_key_file: k.pem\nsigning_algorithm: HS256"
            )),
            Some("signing_algorithm")
        );
        assert_eq!(problem("private_key_file: k.pem"), Some("private_key_file"));
        assert_eq!(
            problem(
                "credentials: per-user\ngrant: client_credentials\nclient_id: a\nclient_secret: s"
            ),
            Some("credentials")
        );
        assert_eq!(
            parse("client_id: a\nclient_secret: s").auth_method(),
            TokenEndpointAuthMethod::ClientSecretBasic
        );
    }
}
