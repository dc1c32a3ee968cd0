//! The sections behind the REST surface: where the registry lives, who may use the gateway,
//! and what services registered at run time may run.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

/// The registry: an embedded SQLite file, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// An SQLite file: a path, or a `sqlite:` / `sqlite://` URL of one (the form
    /// `DATABASE_URL` often has); relative paths are resolved against the config file's
    /// directory. Or a PostgreSQL database: a libpq URL, `postgresql://user:pass@host:port/db`
    /// (also `postgres://`, `?sslmode=` as libpq reads it with `&sslrootcert=`, and
    /// `?host=/run/postgresql` for a Unix socket).
    pub url: String,
    /// The key that seals OAuth tokens and client secrets in the database (any string; a long
    /// random one). Empty, on SQLite only: a random key is made on first run and kept beside
    /// the database, in `<database>.key`, readable by its owner only; a copy of the database
    /// alone then reveals no token. On PostgreSQL it must be set, the same on every replica.
    pub secret_key: String,
    /// How many days the call history keeps a call; older ones are deleted at start and every
    /// hour. 0 (the default) keeps every call.
    pub keep_calls_days: u32,
}

/// Why `database.secret_key` must be set on PostgreSQL.
pub const POSTGRES_NEEDS_SECRET_KEY: &str = "must be set when the database is PostgreSQL: every gateway on it seals and opens the same secrets, and there is no file beside the database to keep a made-up key in";

/// Where the registry lives: [`DatabaseConfig::location`].
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    /// The libpq URL, as configured (it may hold a password: never show it).
    Postgres(String),
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "./data/mcps.db".into(),
            secret_key: String::new(),
            keep_calls_days: 0,
        }
    }
}

impl DatabaseConfig {
    /// Where the registry lives, a file resolved against `base_dir`; or why `url` names no
    /// place the gateway can keep it. A URL of a scheme the gateway does not serve is refused,
    /// never taken as a file path (`mysql://h/db` would make a directory named `mysql:`).
    pub fn location(&self, base_dir: &Path) -> Result<DatabaseLocation, String> {
        let url = self.url.trim();
        if url.is_empty() {
            return Err(
                "is empty: give a file path, a sqlite:// URL or a postgresql:// URL".into(),
            );
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            return Ok(DatabaseLocation::Sqlite(super::resolve(base_dir, path)));
        }
        match scheme(url) {
            None => Ok(DatabaseLocation::Sqlite(super::resolve(base_dir, url))),
            Some(scheme)
                if scheme.eq_ignore_ascii_case("postgres")
                    || scheme.eq_ignore_ascii_case("postgresql") =>
            {
                use std::str::FromStr;
                tokio_postgres::Config::from_str(url).map_err(|error| {
                    // The parser's message names the part it could not read, never the
                    // password: it is safe to show.
                    format!("is not a PostgreSQL URL the gateway can read: {error}")
                })?;
                Ok(DatabaseLocation::Postgres(url.to_owned()))
            }
            Some(scheme) => {
                // The URL itself is not repeated: it may hold a password. One without `//`
                // may be a file name with a colon, which is shown how to write.
                let file = if url[scheme.len() + 1..].starts_with("//") {
                    String::new()
                } else {
                    format!(" (for a file of that name, write ./{url})")
                };
                Err(format!(
                    "{scheme}: is not a database the gateway serves: give a file path, a sqlite:// URL, or a postgres:// or postgresql:// URL{file}"
                ))
            }
        }
    }
}

/// The scheme of `url` (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`), if it
/// starts with one followed by `:`. A single letter is not one: `C:` is a drive.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (scheme.len() > 1
        && first.is_ascii_alphabetic()
        && chars.all(|char| char.is_ascii_alphanumeric() || "+-.".contains(char)))
    .then_some(scheme)
}

/// Who may use the gateway.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
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
