//! One upstream entry's checks: the config file's entries and services registered through
//! the API pass the same ones.

use super::{positive_secs, positive_size};
use crate::config::{ConfigError, ProtocolMode, TransportKind, UpstreamConfig};

/// Headers the HTTP transport owns; an upstream entry may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];

/// An upstream name: `^[a-z0-9][a-z0-9-]{0,31}$`. No `_`, so `name__tool` can never be ambiguous.
pub fn is_valid_upstream_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Checks one upstream entry under its name: the config file's entries and services
/// registered through the API pass the same check.
pub fn upstream_entry(name: &str, upstream: &UpstreamConfig) -> Result<(), ConfigError> {
    let key = format!("upstreams.{name}");
    if !is_valid_upstream_name(name) {
        return Err(ConfigError::invalid(
            key,
            "an upstream name must be 1-32 characters of a-z, 0-9 and '-', starting with a letter or digit",
        ));
    }
    match (&upstream.command, &upstream.url) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::invalid(
                key,
                "set either `command` (stdio) or `url` (remote), not both",
            ));
        }
        (None, None) => {
            return Err(ConfigError::invalid(
                key,
                "needs `command` (a stdio server to spawn) or `url` (a remote server)",
            ));
        }
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.command"),
                    "must not be empty",
                ));
            }
            if upstream.transport_kind() != TransportKind::Stdio {
                return Err(ConfigError::invalid(
                    format!("{key}.transport"),
                    "an upstream with `command` speaks stdio",
                ));
            }
            if !upstream.headers.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{key}.headers"),
                    "headers apply to `url` upstreams only",
                ));
            }
            if upstream.oauth.is_some() {
                return Err(ConfigError::invalid(
                    format!("{key}.oauth"),
                    "OAuth applies to `url` upstreams only",
                ));
            }
            for env_name in upstream.env.keys() {
                if env_name.is_empty() || env_name.contains(['=', '\0']) {
                    return Err(ConfigError::invalid(
                        format!("{key}.env.{env_name}"),
                        "not a valid environment variable name",
                    ));
                }
            }
        }
        (None, Some(url)) => remote_entry(&key, upstream, url)?,
    }
    if let Some(prefix) = &upstream.prefix
        && (prefix.len() > 32
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        return Err(ConfigError::invalid(
            format!("{key}.prefix"),
            "at most 32 characters of A-Z, a-z, 0-9, '_' and '-'",
        ));
    }
    if let Some(secs) = upstream.startup_timeout_secs {
        positive_secs(&format!("{key}.startup_timeout_secs"), secs)?;
    }
    if let Some(secs) = upstream.call_timeout_secs {
        positive_secs(&format!("{key}.call_timeout_secs"), secs)?;
    }
    for (tool, secs) in &upstream.tool_timeouts {
        positive_secs(&format!("{key}.tool_timeouts.{tool}"), *secs)?;
    }
    if let Some(calls) = upstream.max_concurrent_calls {
        positive_size(&format!("{key}.max_concurrent_calls"), calls)?;
    }
    for (tool, rule) in &upstream.tools {
        rule.validate(&format!("{key}.tools.{tool}"))?;
    }
    Ok(())
}

fn remote_entry(key: &str, upstream: &UpstreamConfig, url: &str) -> Result<(), ConfigError> {
    let kind = upstream.transport_kind();
    let schemes: &[&str] = match kind {
        TransportKind::StreamableHttp | TransportKind::Sse => &["http", "https"],
        TransportKind::Websocket => &["ws", "wss"],
        TransportKind::Stdio => {
            return Err(ConfigError::invalid(
                format!("{key}.transport"),
                "a `url` upstream cannot use stdio; remove `transport` or set streamable-http",
            ));
        }
    };
    if kind == TransportKind::Sse && upstream.protocol == ProtocolMode::Modern {
        return Err(ConfigError::invalid(
            format!("{key}.protocol"),
            "the sse transport belongs to the 2024-11-05 revision: use `protocol: legacy` or `auto`",
        ));
    }
    let parsed: http::Uri = url.parse().map_err(|error| {
        ConfigError::invalid(
            format!("{key}.url"),
            format!("{url:?} is not a URL: {error}"),
        )
    })?;
    if !parsed
        .scheme_str()
        .is_some_and(|scheme| schemes.contains(&scheme))
        || parsed.host().is_none()
    {
        return Err(ConfigError::invalid(
            format!("{key}.url"),
            format!(
                "{url:?} must be a {} URL with a host for the {} transport",
                schemes
                    .iter()
                    .map(|scheme| format!("{scheme}://"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                kind.as_str()
            ),
        ));
    }
    if let Some((field, why)) = upstream.oauth.as_ref().and_then(|oauth| oauth.problem()) {
        return Err(ConfigError::invalid(format!("{key}.oauth.{field}"), why));
    }
    if upstream.oauth.is_some()
        && upstream
            .headers
            .keys()
            .any(|name| name.eq_ignore_ascii_case("authorization"))
    {
        return Err(ConfigError::invalid(
            format!("{key}.headers.Authorization"),
            "with `oauth`, the gateway sends its own access token: remove this header",
        ));
    }
    if !upstream.args.is_empty() || !upstream.env.is_empty() || upstream.cwd.is_some() {
        return Err(ConfigError::invalid(
            key,
            "`args`, `env` and `cwd` apply to `command` upstreams only",
        ));
    }
    for (name, value) in &upstream.headers {
        let header_key = format!("{key}.headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::invalid(
                header_key,
                "not a valid HTTP header name",
            ));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(ConfigError::invalid(
                header_key,
                "this header is set by the transport and cannot be overridden",
            ));
        }
        // The value is a secret more often than not: never echo it.
        if http::HeaderValue::from_str(value).is_err() {
            return Err(ConfigError::invalid(
                header_key,
                "the value holds characters not allowed in an HTTP header",
            ));
        }
    }
    Ok(())
}
