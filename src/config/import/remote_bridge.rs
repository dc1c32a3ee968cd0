//! An entry that runs mcp-remote, the stdio bridge desktop clients reach a remote server
//! through (`npx mcp-remote https://host/mcp --header "Authorization: Bearer ${TOKEN}"`),
//! becomes that server's `url:` upstream: the gateway reaches it itself, with no Node process
//! between, and signs in to it as mcp-remote did.
//!
//! What carries over: the URL; each `--header` (`${VAR}` filled from the entry's `env`, as
//! mcp-remote fills it; any other `${VAR}` is left to the gateway's environment); `--transport
//! sse-only` as the SSE transport; and the sign-in: without an `Authorization` header, an
//! `oauth:` block, as mcp-remote signs in when the server asks (its client id and secret from
//! `--static-oauth-client-info`, the client credentials grant from `--client-credentials`).
//! Everything else is reported as left out, but what only concerns mcp-remote itself.

use indexmap::IndexMap;
use serde_json::Value;

use crate::config::{OAuthConfig, OAuthGrant, TransportKind, UpstreamConfig};

/// Commands that run a package (the package is then among their arguments), or mcp-remote
/// itself, installed.
const RUNNERS: [&str; 7] = [
    "npx",
    "npx.cmd",
    "bunx",
    "pnpx",
    "pnpm",
    "yarn",
    "mcp-remote",
];

/// mcp-remote's options that take a value, besides those carried over.
const LEFT_OUT_WITH_VALUE: [&str; 10] = [
    "--header-file",
    "--host",
    "--callback-path",
    "--auth-success-url",
    "--token-endpoint",
    "--resource",
    "--auth-timeout",
    "--headers-timeout",
    "--ignore-tool",
    "--static-oauth-client-metadata",
];

/// mcp-remote's switches that change what reaches the server, which the gateway has no word
/// for. The others (`--allow-http`, `--debug`, `--silent`...) concern mcp-remote alone.
const LEFT_OUT_SWITCHES: [&str; 5] = [
    "--device-code",
    "--use-id-token",
    "--disable-resource-parameter",
    "--enable-proxy",
    "--disable-cookies",
];

/// The remote upstream `entry` bridges to, when it runs mcp-remote; what was left out goes
/// to `notes`, under `name`.
pub(super) fn remote_of(
    entry: &UpstreamConfig,
    name: &str,
    notes: &mut Vec<String>,
) -> Option<UpstreamConfig> {
    let command = entry.command.as_deref()?;
    let program = command.rsplit(['/', '\\']).next().unwrap_or(command);
    if !RUNNERS.contains(&program) {
        return None;
    }
    let options = if program == "mcp-remote" {
        &entry.args[..]
    } else {
        let package = entry
            .args
            .iter()
            .position(|arg| arg == "mcp-remote" || arg.strip_prefix("mcp-remote@").is_some())?;
        &entry.args[package + 1..]
    };
    let mut remote = UpstreamConfig {
        disabled: entry.disabled,
        ..UpstreamConfig::default()
    };
    let mut oauth = OAuthConfig::default();
    let used = std::cell::RefCell::new(Vec::new());
    let filled = |value: &str| filled_from(value, &entry.env, &mut used.borrow_mut());
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_str() {
            "--header" => {
                let Some(line) = options.next() else { break };
                match line.split_once(':') {
                    Some((header, value)) => {
                        remote
                            .headers
                            .insert(header.trim().to_owned(), filled(value.trim()));
                    }
                    None => notes.push(format!(
                        "{name}: the header {line:?} is not `Name: value`; left out"
                    )),
                }
            }
            "--transport" => {
                let sse_only = options
                    .next()
                    .is_some_and(|strategy| strategy == "sse-only");
                remote.transport = sse_only.then_some(TransportKind::Sse);
            }
            "--static-oauth-client-info" => {
                let text = options.next().map(String::as_str).unwrap_or_default();
                let info: Option<Value> = serde_json::from_str(text).ok();
                if info.is_none() {
                    notes.push(format!(
                        "{name}: mcp-remote's client information {text:?} is not JSON (a file \
                         is not read); set `oauth.client_id` and `client_secret` yourself"
                    ));
                }
                let field = |key: &str| {
                    info.as_ref()
                        .and_then(|info| info[key].as_str())
                        .map(&filled)
                };
                oauth.client_id = field("client_id");
                oauth.client_secret = field("client_secret");
            }
            "--client-credentials" => oauth.grant = OAuthGrant::ClientCredentials,
            "--client-metadata-url" => {
                oauth.client_metadata_url = options.next().map(|url| filled(url));
            }
            "--protocol" => {
                // The gateway opens every upstream in the era it serves best (`protocol: auto`).
                options.next();
            }
            left_out if LEFT_OUT_WITH_VALUE.contains(&left_out) => {
                options.next();
                notes.push(format!(
                    "{name}: mcp-remote's `{left_out}` has no equivalent here; left out"
                ));
            }
            left_out if LEFT_OUT_SWITCHES.contains(&left_out) => {
                notes.push(format!(
                    "{name}: mcp-remote's `{left_out}` has no equivalent here; left out"
                ));
            }
            flag if flag.starts_with("--") => {}
            // The server's URL, then the callback port mcp-remote listens on for sign-ins.
            positional if remote.url.is_none() => remote.url = Some(filled(positional)),
            _ => {}
        }
    }
    remote.url.as_ref()?;
    let authorized = remote
        .headers
        .keys()
        .any(|header| header.eq_ignore_ascii_case("authorization"));
    if !authorized {
        notes.push(format!(
            "{name}: signs in with OAuth when the server asks, as mcp-remote did: an admin signs \
             it in once (POST /api/v1/mcp/services/{name}/oauth/authorize, or the console)"
        ));
        remote.oauth = Some(oauth);
    }
    notes.push(format!(
        "{name}: mcp-remote's server, reached directly at {}",
        remote.url.as_deref().unwrap_or_default()
    ));
    let mut used = used.into_inner();
    used.sort();
    used.dedup();
    if !used.is_empty() {
        notes.push(format!(
            "{name}: {} filled in from the entry's env, as mcp-remote did; to keep the value \
             out of proxy.yaml, write it back as `${{VAR}}` and set it in the .env beside it",
            used.join(", ")
        ));
    }
    Some(remote)
}

/// `value` with each `${VAR}` that `env` sets replaced by its value, as mcp-remote fills its
/// arguments from its environment (each such `VAR` added to `used`); the others are left for
/// the gateway's environment.
fn filled_from(value: &str, env: &IndexMap<String, String>, used: &mut Vec<String>) -> String {
    super::replace_placeholders(value, |var| {
        let set = env.get(var)?;
        used.push(var.to_owned());
        Some(set.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(command: &str, args: &[&str], env: &[(&str, &str)]) -> UpstreamConfig {
        UpstreamConfig {
            command: Some(command.into()),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            env: env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            ..UpstreamConfig::default()
        }
    }

    #[test]
    fn a_keyed_bridge_becomes_the_url_with_its_headers_filled_from_its_env() {
        let mut notes = Vec::new();
        let bridge = entry(
            "npx",
            &[
                "-y",
                "mcp-remote@0.15.1",
                "https://mcp.example.com/mcp",
                "3334",
                "--header",
                "Authorization: Bearer ${KEY}",
                "--header",
                "X-Team:${TEAM}",
                "--transport",
                "sse-only",
                "--allow-http",
                "--ignore-tool",
                "delete*",
            ],
            &[("KEY", "k-123")],
        );
        let remote = remote_of(&bridge, "team", &mut notes).expect("a bridge");
        assert_eq!(remote.url.as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(remote.headers["Authorization"], "Bearer k-123");
        // Not in its env: the gateway's environment fills it.
        assert_eq!(remote.headers["X-Team"], "${TEAM}");
        assert_eq!(remote.transport, Some(TransportKind::Sse));
        assert!(
            (remote.command.is_none() && remote.oauth.is_none()),
            "{remote:?}"
        );
        assert!(
            notes.iter().any(|note| note.contains("--ignore-tool")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|note| note.contains("KEY filled in from the entry's env")),
            "{notes:?}"
        );
        assert!(
            !notes.iter().any(|note| note.contains("--allow-http")),
            "{notes:?}"
        );
    }

    #[test]
    fn a_bridge_without_a_key_signs_in_with_oauth() {
        let mut notes = Vec::new();
        let bridge = entry(
            "/usr/local/bin/mcp-remote",
            &[
                "https://mcp.linear.app/mcp",
                "--static-oauth-client-info",
                r#"{"client_id":"my-client","client_secret":"${SECRET}"}"#,
                "--client-credentials",
            ],
            &[("SECRET", "s")],
        );
        let remote = remote_of(&bridge, "linear", &mut notes).expect("a bridge");
        let oauth = remote.oauth.expect("signs in");
        assert_eq!(oauth.client_id.as_deref(), Some("my-client"));
        assert_eq!(oauth.client_secret.as_deref(), Some("s"));
        assert_eq!(oauth.grant, OAuthGrant::ClientCredentials);
        assert!(
            notes.iter().any(|note| note.contains("oauth/authorize")),
            "{notes:?}"
        );
    }

    #[test]
    fn other_commands_and_packages_are_not_bridges() {
        let mut notes = Vec::new();
        for (command, args) in [
            (
                "npx",
                &["-y", "@modelcontextprotocol/server-everything"][..],
            ),
            ("node", &["mcp-remote", "https://x/mcp"][..]),
            ("npx", &["mcp-remote-client", "https://x/mcp"][..]),
            ("npx", &["-y", "mcp-remote"][..]),
        ] {
            assert!(
                remote_of(&entry(command, args, &[]), "x", &mut notes).is_none(),
                "{command} {args:?}"
            );
        }
    }
}
