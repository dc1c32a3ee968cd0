//! The sections behind the REST surface: where the registry lives, who may use the gateway,
//! and what services registered at run time may run.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

/// The embedded SQLite registry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// A file path, or a `sqlite:` / `sqlite://` URL of one (the form `DATABASE_URL` often has).
    /// Relative paths are resolved against the config file's directory.
    pub url: String,
    /// The key that seals OAuth tokens and client secrets in the database (any string; a long
    /// random one). Empty: a random key is made on first run and kept beside the database,
    /// in `<database>.key`, readable by its owner only; a copy of the database alone then
    /// reveals no token.
    pub secret_key: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "./data/mcps.db".into(),
            secret_key: String::new(),
        }
    }
}

impl DatabaseConfig {
    /// The database file, resolved against `base_dir`.
    pub fn path(&self, base_dir: &Path) -> PathBuf {
        let url = self.url.trim();
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        super::resolve(base_dir, path)
    }
}

/// Who may use the gateway.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// When true, `/mcp` and `/ws` need `Authorization: Bearer <API key or login token>`.
    /// `/api/v1` always does, except health and login.
    pub enabled: bool,
    /// How long a token from `POST /api/v1/auth/login` stays valid.
    pub token_ttl_secs: u64,
    /// The brake on password guessing.
    pub login: LoginThrottleConfig,
    /// MCP clients sign in through the organisation's identity provider: `/mcp` and `/ws`
    /// accept its JWT access tokens (beside API keys), as an OAuth protected resource.
    pub oauth: Option<ResourceServerConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            token_ttl_secs: 12 * 3600,
            login: LoginThrottleConfig::default(),
            oauth: None,
        }
    }
}

/// The gateway as an OAuth protected resource (RFC 9728): whose tokens it takes, for what.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerConfig {
    /// The authorization server whose access tokens are accepted (their `iss`).
    pub issuer: String,
    /// The gateway's resource URL, e.g. `https://mcp.example.com/mcp`: tokens must name it in
    /// `aud`.
    pub audience: String,
    /// Scopes every token must carry (a token without one of them gets 403).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Where the issuer's signing keys are published; by default, the `jwks_uri` of its
    /// metadata (OpenID discovery, then RFC 8414).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The gateway's own client at the identity provider, registered there with the redirect
    /// URI `{server.public_url}/oauth/identity-callback`. With it, the provider's users can
    /// sign in to `credentials: per-user` upstreams: the gateway's sign-in page sends them to
    /// the provider to learn who they are. Empty counts as unset.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its secret, for a confidential client (sent with HTTP Basic); unset for a public
    /// client, which PKCE alone protects. Never logged.
    #[serde(default)]
    pub client_secret: Option<String>,
}

impl ResourceServerConfig {
    /// The gateway's client id at the identity provider, if one is set (empty is unset).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref().filter(|id| !id.is_empty())
    }

    /// Its secret, if one is set (empty is unset).
    pub fn client_secret(&self) -> Option<&str> {
        self.client_secret
            .as_deref()
            .filter(|secret| !secret.is_empty())
    }
}

/// How wrong passwords slow down further logins (see `security::LoginThrottle`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginThrottleConfig {
    /// Wrong passwords, per username and per client address, before any delay.
    pub free_failures: u32,
    /// The delay after each further wrong password doubles from 1 s up to this.
    pub max_delay_secs: f64,
    /// Wrong passwords older than this are forgotten.
    pub window_secs: f64,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            max_delay_secs: 60.0,
            window_secs: 900.0,
        }
    }
}

impl LoginThrottleConfig {
    pub fn max_delay(&self) -> Duration {
        Duration::from_secs_f64(self.max_delay_secs)
    }
    pub fn window(&self) -> Duration {
        Duration::from_secs_f64(self.window_secs)
    }
}

/// What services registered through the API may do.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The programs a service registered through the API may run, by bare name (`npx`,
    /// `uvx`) or absolute path. Empty (the default): no command may be registered, only URLs.
    pub spawn_allowlist: Vec<String>,
    /// Whether a service registered through the API may have a URL on loopback, private or
    /// link-local addresses (off: the API cannot reach into the gateway's own network).
    pub allow_private_urls: bool,
}

impl SecurityConfig {
    /// Whether `command` (as written in a service) may be spawned. A bare name matches a
    /// bare entry; a path matches only the same path, so `./npx` is not `npx`.
    pub fn may_spawn(&self, command: &str) -> bool {
        self.spawn_allowlist
            .iter()
            .any(|allowed| allowed == command)
    }
}
