//! Checks that run right after parsing; each failure names the key path it is about.

mod upstream_entry;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use self::upstream_entry::{is_valid_upstream_name, upstream_entry};
use super::{Config, ConfigError};

/// More runtime threads than this is a typo, not a tuning.
const MAX_THREADS: usize = 1024;

pub(super) fn config(config: &Config) -> Result<(), ConfigError> {
    parse_listen(&config.server.listen)?;
    let database = config
        .database
        .location(&config.base_dir)
        .map_err(|message| ConfigError::invalid("database.url", message))?;
    if matches!(database, super::DatabaseLocation::Postgres(_))
        && config.database.secret_key.is_empty()
    {
        return Err(ConfigError::invalid(
            "database.secret_key",
            super::admin::POSTGRES_NEEDS_SECRET_KEY,
        ));
    }
    if config.server.threads > MAX_THREADS {
        return Err(ConfigError::invalid(
            "server.threads",
            format!("{} is more than {MAX_THREADS}", config.server.threads),
        ));
    }
    for (index, origin) in config.server.allowed_origins.iter().enumerate() {
        let key = format!("server.allowed_origins[{index}]");
        if origin != "null" && !origin.starts_with("http://") && !origin.starts_with("https://") {
            return Err(ConfigError::invalid(
                key,
                format!("{origin:?} must start with http:// or https:// (or be \"null\")"),
            ));
        }
    }
    positive_size("limits.max_body_bytes", config.limits.max_body_bytes)?;
    positive_size("limits.max_line_bytes", config.limits.max_line_bytes)?;
    if !(1..=128).contains(&config.limits.max_json_depth) {
        return Err(ConfigError::invalid(
            "limits.max_json_depth",
            format!(
                "must be from 1 to 128 (the JSON parser's own bound), got {}",
                config.limits.max_json_depth
            ),
        ));
    }
    positive_size("limits.stderr_line_bytes", config.limits.stderr_line_bytes)?;
    positive_size("limits.max_upload_bytes", config.limits.max_upload_bytes)?;
    positive_size(
        "limits.max_concurrent_calls",
        config.limits.max_concurrent_calls,
    )?;
    positive_size("limits.max_sessions", config.limits.max_sessions)?;
    positive_size(
        "limits.max_sessions_per_principal",
        config.limits.max_sessions_per_principal,
    )?;
    positive_size(
        "limits.max_sessions_per_peer",
        config.limits.max_sessions_per_peer,
    )?;
    positive_size("limits.max_connections", config.limits.max_connections)?;
    if config.cache.enabled {
        positive_size("cache.max_mib", config.cache.max_mib)?;
    }
    positive_size(
        "limits.max_connections_per_peer",
        config.limits.max_connections_per_peer,
    )?;
    positive_size(
        "limits.max_outbound_bytes",
        config.limits.max_outbound_bytes,
    )?;
    positive_secs("timeouts.startup_secs", config.timeouts.startup_secs)?;
    positive_secs("timeouts.call_secs", config.timeouts.call_secs)?;
    positive_secs(
        "timeouts.shutdown_grace_secs",
        config.timeouts.shutdown_grace_secs,
    )?;
    positive_secs("timeouts.drain_secs", config.timeouts.drain_secs)?;
    positive_secs(
        "timeouts.session_idle_secs",
        config.timeouts.session_idle_secs,
    )?;
    positive_secs(
        "timeouts.unused_session_idle_secs",
        config.timeouts.unused_session_idle_secs,
    )?;
    positive_secs(
        "timeouts.session_sleep_secs",
        config.timeouts.session_sleep_secs,
    )?;
    positive_secs(
        "timeouts.session_copy_idle_secs",
        config.timeouts.session_copy_idle_secs,
    )?;
    positive_secs(
        "timeouts.client_write_stall_secs",
        config.timeouts.client_write_stall_secs,
    )?;
    positive_secs(
        "timeouts.header_read_secs",
        config.timeouts.header_read_secs,
    )?;
    positive_secs("timeouts.body_read_secs", config.timeouts.body_read_secs)?;
    positive_secs(
        "timeouts.connection_idle_secs",
        config.timeouts.connection_idle_secs,
    )?;
    positive_size("catalog.page_size", config.catalog.page_size)?;
    let restart = &config.restart;
    positive_secs("restart.initial_backoff_secs", restart.initial_backoff_secs)?;
    positive_secs("restart.max_backoff_secs", restart.max_backoff_secs)?;
    positive_secs("restart.healthy_after_secs", restart.healthy_after_secs)?;
    positive_secs(
        "restart.crash_loop_pause_secs",
        restart.crash_loop_pause_secs,
    )?;
    positive_size(
        "restart.crash_loop_failures",
        restart.crash_loop_failures as usize,
    )?;
    if let Some(oauth) = &config.auth.oauth {
        for (key, url) in [
            ("auth.oauth.issuer", Some(&oauth.issuer)),
            ("auth.oauth.audience", Some(&oauth.audience)),
            ("auth.oauth.jwks_url", oauth.jwks_url.as_ref()),
        ] {
            let Some(url) = url else { continue };
            let parsed: Option<http::Uri> = url.parse().ok();
            let web = parsed.is_some_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()
            });
            if !web {
                return Err(ConfigError::invalid(
                    key,
                    format!("{url:?} must be an http:// or https:// URL"),
                ));
            }
        }
        if oauth.client_secret().is_some() && oauth.client_id().is_none() {
            return Err(ConfigError::invalid(
                "auth.oauth.client_secret",
                "a client secret needs the `client_id` it belongs to",
            ));
        }
    }
    let login = &config.auth.login;
    positive_secs("auth.login.max_delay_secs", login.max_delay_secs)?;
    positive_secs("auth.login.window_secs", login.window_secs)?;
    if login.window_secs < login.max_delay_secs {
        return Err(ConfigError::invalid(
            "auth.login.window_secs",
            format!(
                "{} is shorter than auth.login.max_delay_secs ({}): failures would be forgotten before their delay ends",
                login.window_secs, login.max_delay_secs
            ),
        ));
    }
    if let Err(error) = tracing_subscriber::EnvFilter::try_new(&config.logging.level) {
        return Err(ConfigError::invalid("logging.level", error.to_string()));
    }
    positive_size("logging.max_files", config.logging.max_files)?;
    for (name, upstream) in &config.upstreams {
        upstream_entry(name, upstream)?;
    }
    for (name, server) in &config.virtual_servers {
        super::virtual_server::validate(name, server)?;
    }
    Ok(())
}

/// Parses `host:port`, where host is an IP address or `localhost`.
pub(super) fn parse_listen(listen: &str) -> Result<SocketAddr, ConfigError> {
    let error = || {
        ConfigError::invalid(
            "server.listen",
            format!("{listen:?} is not an address such as 127.0.0.1:8000 or [::1]:8000"),
        )
    };
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = listen.rsplit_once(':').ok_or_else(error)?;
    let port: u16 = port.parse().map_err(|_| error())?;
    match host {
        "localhost" => Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
        _ => Err(error()),
    }
}

fn positive_size(key: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::invalid(key, "must be greater than 0"));
    }
    Ok(())
}

fn positive_secs(key: &str, value: f64) -> Result<(), ConfigError> {
    if !(value.is_finite() && value > 0.0 && value < 1e9) {
        return Err(ConfigError::invalid(
            key,
            format!("must be a positive number of seconds, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TransportKind;

    fn load(yaml: &str) -> Result<Config, ConfigError> {
        Config::from_yaml_str(yaml, &|_| None)
    }

    fn error_of(yaml: &str) -> String {
        load(yaml).unwrap_err().to_string()
    }

    #[test]
    fn empty_file_is_a_valid_config() {
        let config = load("").unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8000");
        assert!(config.upstreams.is_empty());
    }

    #[test]
    fn claude_desktop_entry_pastes_in() {
        let config = load(
            "upstreams:\n  fs:\n    command: npx\n    args: [\"-y\", \"x\"]\n    env: {A: b}\n",
        )
        .unwrap();
        assert_eq!(
            config.upstreams["fs"].transport_kind(),
            TransportKind::Stdio
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let error = error_of("upstreams:\n  time:\n    command: x\n    argz: []\n");
        assert!(
            error.starts_with("upstreams.time.argz: unknown field"),
            "{error}"
        );
        let error = error_of("server:\n  lisen: x\n");
        assert!(error.starts_with("server.lisen: unknown field"), "{error}");
    }

    #[test]
    fn bad_upstream_name_is_named() {
        let error = error_of("upstreams:\n  My_Server:\n    command: x\n");
        assert!(error.starts_with("upstreams.My_Server:"), "{error}");
    }

    #[test]
    fn duplicate_upstream_name_is_refused() {
        let error = error_of("upstreams:\n  time:\n    command: a\n  time:\n    command: b\n");
        assert!(
            error.contains("duplicate") && error.contains("time"),
            "{error}"
        );
    }

    #[test]
    fn command_and_url_together_are_refused() {
        let error = error_of("upstreams:\n  x:\n    command: a\n    url: http://h/mcp\n");
        assert!(error.starts_with("upstreams.x:"), "{error}");
    }

    #[test]
    fn reserved_header_is_refused() {
        let error =
            error_of("upstreams:\n  x:\n    url: http://h/mcp\n    headers: {Mcp-Session-Id: a}\n");
        assert!(
            error.starts_with("upstreams.x.headers.Mcp-Session-Id:"),
            "{error}"
        );
    }

    #[test]
    fn bad_listen_address_is_named() {
        let error = error_of("server:\n  listen: nowhere\n");
        assert!(error.starts_with("server.listen:"), "{error}");
    }

    #[test]
    fn numbers_come_from_variables() {
        let config =
            Config::from_yaml_str("timeouts:\n  call_secs: ${MCP_TIMEOUT:60}\n", &|name| {
                (name == "MCP_TIMEOUT").then(|| "5".to_owned())
            })
            .unwrap();
        assert_eq!(config.timeouts.call_secs, 5.0);
    }

    #[test]
    fn upstream_name_rule() {
        assert!(is_valid_upstream_name("time"));
        assert!(is_valid_upstream_name("0-a-b"));
        assert!(!is_valid_upstream_name("-a"));
        assert!(!is_valid_upstream_name("a_b"));
        assert!(!is_valid_upstream_name(&"a".repeat(33)));
    }
}
