//! `proxy.yaml` → a typed, validated [`Config`].
//!
//! Loading is three steps, each of which names the key path on failure:
//! 1. read the file and, if one sits beside it, a `.env` file (it never overrides the real environment);
//! 2. parse YAML into a value tree and expand `${VAR}` / `${VAR:default}` inside every string
//!    ([`expand`]);
//! 3. deserialize into the structs below (`deny_unknown_fields` everywhere) and [`Config::validate`].
//!
//! The YAML crate stays behind this module so it can be swapped.

mod admin;
mod cache;
mod expand;
pub mod import;
mod limits;
mod logging;
mod oauth;
mod redact;
mod supervision;
mod tasks;
mod tool_override;
mod upstream;
mod validate;
pub mod virtual_server;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use admin::{
    AuthConfig, DatabaseConfig, DatabaseLocation, LoginThrottleConfig, POSTGRES_NEEDS_SECRET_KEY,
    ResourceServerConfig, SecurityConfig,
};
pub use cache::CacheConfig;
pub use limits::{LimitsConfig, TimeoutsConfig};
pub use logging::{LogFormat, LogRotation, LoggingConfig};
pub use oauth::{CredentialsScope, OAuthConfig, OAuthGrant, TokenEndpointAuthMethod};
pub use redact::{REDACTED, is_shown_form};
pub use supervision::RestartConfig;
pub use tasks::{TaskSupport, TasksConfig};
pub use tool_override::ToolOverride;
pub use upstream::{Isolation, ProtocolMode, TransportKind, UpstreamConfig};
pub use virtual_server::VirtualServerConfig;

/// Why a configuration could not be loaded. Every message names the file or key path at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {message}")]
    DotEnv { path: PathBuf, message: String },
    #[error("{path}: invalid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The whole of `proxy.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    #[serde(default)]
    pub catalog: CatalogConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub tasks: TasksConfig,
    #[serde(default)]
    pub restart: RestartConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub security: SecurityConfig,
    /// Upstream MCP servers by name, in the order the file lists them (that order breaks name ties).
    #[serde(default)]
    pub upstreams: IndexMap<String, UpstreamConfig>,
    /// Named subsets of the catalog, each with its own endpoint.
    #[serde(default)]
    pub virtual_servers: IndexMap<String, VirtualServerConfig>,
    /// The directory relative `cwd` and `command` paths are resolved against: the config file's own.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// Listener and HTTP front-door settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `host:port` for `/mcp` and `/api/v1`.
    pub listen: String,
    /// `Host` header values accepted besides loopback names and the listen address.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted besides loopback ones, e.g. `https://app.example.com`.
    pub allowed_origins: Vec<String>,
    /// Threads that run the gateway: 1 (the default) runs everything on one thread, which the
    /// benchmark shows costs the least CPU per call (a call hops between several tasks, and
    /// on one thread no hop wakes another thread); raise it when that thread is saturated,
    /// or set 0 for one per core.
    pub threads: usize,
    /// Reload this file when it changes on disk (SIGHUP and `POST /api/v1/system/reload`
    /// reload it either way).
    pub watch_config: bool,
    /// Where browsers and remote servers reach the gateway, when not at `http://<listen>`
    /// (behind a reverse proxy, or under a name): OAuth sign-ins come back to
    /// `<public_url>/oauth/callback`.
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8000".into(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            threads: 1,
            watch_config: true,
            public_url: None,
        }
    }
}

impl ServerConfig {
    /// The parsed listen address; [`Config::validate`] has already proven it parses.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        validate::parse_listen(&self.listen)
    }
}

/// How the aggregated catalog is presented to clients.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Items per `tools/list` page; clients follow `nextCursor` for the rest.
    pub page_size: usize,
    /// Offer clients of the whole gateway three tools instead of the catalog:
    /// `search_tools`, `call_tool` and `list_tool_names` (a virtual server has its own
    /// `tool_search`). A catalog of hundreds of tools then costs a client's context three.
    pub tool_search: bool,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            page_size: 200,
            tool_search: false,
        }
    }
}

impl Config {
    /// Reads, expands, parses and validates the file at `path`. Variables of a `.env`
    /// beside it are set in the process environment (where upstreams inherit them).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let base_dir = base_dir_of(path);
        load_dotenv(&base_dir.join(".env"))?;
        Self::load_with(path, base_dir, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] while the gateway runs (a reload): the `.env` is read again but the
    /// process environment is left alone, since other threads read it meanwhile. Its new
    /// variables serve the file's `${VAR}`s.
    pub fn reload(path: &Path) -> Result<Self, ConfigError> {
        let base_dir = base_dir_of(path);
        let dotenv = dotenv_values(&base_dir.join(".env"))?;
        Self::load_with(path, base_dir, &|name| {
            std::env::var(name)
                .ok()
                .or_else(|| dotenv.get(name).cloned())
        })
    }

    fn load_with(
        path: &Path,
        base_dir: PathBuf,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::from_yaml_str(&text, env).map_err(|error| match error {
            ConfigError::Yaml { message, .. } => ConfigError::Yaml {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        config.base_dir = base_dir;
        Ok(config)
    }

    /// Parses and validates YAML text, looking variables up with `env` (tests pass their own).
    pub fn from_yaml_str(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut tree: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|error| ConfigError::Yaml {
                path: PathBuf::from("<config>"),
                message: error.to_string(),
            })?;
        if tree.is_null() {
            tree = serde_yaml::Value::Mapping(Default::default());
        }
        expand::expand_tree(&mut tree, "", env)?;
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|error| {
            let key = error.path().to_string();
            let key = if key == "." { "<root>".to_owned() } else { key };
            ConfigError::invalid(key, error.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(Config {
            base_dir: PathBuf::from("."),
            ..config
        })
    }

    /// Checks everything serde cannot: names, addresses, URLs, exclusive fields, positive limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate::config(self)
    }

    /// Checks an upstream entry that did not come from the file (a service registered through
    /// the API) as if it had.
    pub fn validate_upstream(name: &str, upstream: &UpstreamConfig) -> Result<(), ConfigError> {
        validate::upstream_entry(name, upstream)
    }
}

/// The directory of the config file at `path`: what its relative paths mean.
/// `path` as seen from `base_dir` (an absolute `path` stands alone). Its `.` parts are
/// dropped, so the default `./data/mcps.db` beside `proxy.yaml` reads `./data/mcps.db`
/// in messages, not `././data/mcps.db`.
pub fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let path: PathBuf = Path::new(path)
        .components()
        .filter(|part| *part != std::path::Component::CurDir)
        .collect();
    base_dir.join(path)
}

fn base_dir_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned()
}

/// The variables of the `.env` file at `path` (none when there is no such file).
fn dotenv_values(path: &Path) -> Result<std::collections::HashMap<String, String>, ConfigError> {
    let invalid = |error: dotenvy::Error| ConfigError::DotEnv {
        path: path.to_owned(),
        message: error.to_string(),
    };
    match dotenvy::from_path_iter(path) {
        Ok(entries) => entries.map(|entry| entry.map_err(invalid)).collect(),
        Err(dotenvy::Error::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {
            Ok(Default::default())
        }
        Err(error) => Err(invalid(error)),
    }
}

fn load_dotenv(path: &Path) -> Result<(), ConfigError> {
    match dotenvy::from_path(path) {
        Ok(()) => Ok(()),
        Err(dotenvy::Error::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ConfigError::DotEnv {
            path: path.to_owned(),
            message: error.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_paths_drop_dot_parts_and_keep_absolute_ones() {
        let resolve = |base: &str, path: &str| resolve(Path::new(base), path);
        assert_eq!(resolve(".", "./data/mcps.db"), Path::new("./data/mcps.db"));
        assert_eq!(resolve("/etc/mcps", "./logs"), Path::new("/etc/mcps/logs"));
        assert_eq!(resolve("conf", "../logs"), Path::new("conf/../logs"));
        assert_eq!(
            resolve("conf", "/var/lib/mcps.db"),
            Path::new("/var/lib/mcps.db")
        );
    }
}
