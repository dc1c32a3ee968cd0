//! The configuration as it may be shown: every secret replaced by [`REDACTED`]. The API's
//! service views and the console's config page show only this.
//!
//! Secrets are found by where they sit, not guessed from names: `env` and `headers` values
//! (API keys and bearer tokens travel there), client secrets, the registry's sealing key and
//! the password of any URL. `args` are shown as written: put a secret in `env`, not `args`.

use url::Url;

use super::{Config, UpstreamConfig};

/// What a secret is shown as. A merge patch that sends it back keeps the secret (see the
/// services API).
pub const REDACTED: &str = "********";

impl Config {
    /// This configuration with every secret replaced by [`REDACTED`].
    pub fn redacted(&self) -> Config {
        let mut shown = self.clone();
        shown.database.url = without_password(&shown.database.url);
        hide(&mut shown.database.secret_key);
        shown.logging.otlp_endpoint = without_password(&shown.logging.otlp_endpoint);
        if let Some(url) = &mut shown.server.public_url {
            *url = without_password(url);
        }
        if let Some(oauth) = &mut shown.auth.oauth {
            oauth.client_secret.as_mut().map(hide);
            if let Some(url) = &mut oauth.jwks_url {
                *url = without_password(url);
            }
        }
        for upstream in shown.upstreams.values_mut() {
            *upstream = upstream.redacted();
        }
        shown
    }
}

impl UpstreamConfig {
    /// This entry with the values of `env` and `headers`, its OAuth client secret and its
    /// URL's password replaced by [`REDACTED`].
    pub fn redacted(&self) -> UpstreamConfig {
        let mut shown = self.clone();
        for value in shown.env.values_mut().chain(shown.headers.values_mut()) {
            *value = REDACTED.to_owned();
        }
        if let Some(oauth) = &mut shown.oauth {
            oauth.client_secret.as_mut().map(hide);
        }
        if let Some(url) = &mut shown.url {
            *url = without_password(url);
        }
        shown
    }
}

/// Whether `sent` is `original` as this module shows it: a client that sends back what it
/// was shown means to keep the secret, not to set it to stars.
pub fn is_shown_form(original: &str, sent: &str) -> bool {
    sent == REDACTED || (sent != original && without_password(original) == sent)
}

/// A set secret becomes [`REDACTED`]; an empty one (unset) stays empty.
fn hide(secret: &mut String) {
    if !secret.is_empty() {
        *secret = REDACTED.to_owned();
    }
}

/// `url` with its password (`scheme://user:password@host`) redacted; anything that is not
/// such a URL (an SQLite path) as it is.
fn without_password(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Only URLs with a host have a password, and those always take a new one.
            let _ = parsed.set_password(Some(REDACTED));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn every_secret_is_hidden_and_nothing_else() {
        let shown = config(
            r#"
database:
  url: postgresql://gateway:hunter2@db.internal:5432/mcps
  secret_key: seal-me
logging:
  otlp_endpoint: https://otel:collector-pass@otel.example.com
server:
  public_url: https://me:public-pass@mcp.example.com
auth:
  oauth:
    issuer: https://id.example.com
    audience: https://mcp.example.com/mcp
    client_id: gateway
    client_secret: idp-secret
upstreams:
  github:
    command: npx
    args: [server-github]
    env: { GITHUB_TOKEN: ghp_abc }
  remote:
    url: https://bot:pass@mcp.example.com/mcp
    headers: { Authorization: Bearer xyz }
    oauth: { client_id: c, client_secret: upstream-secret }
"#,
        )
        .redacted();
        let text = serde_yaml::to_string(&shown).unwrap();
        for secret in [
            "hunter2",
            "seal-me",
            "idp-secret",
            "ghp_abc",
            "pass@",
            "xyz",
            "upstream-secret",
            "collector-pass",
            "public-pass",
        ] {
            assert!(!text.contains(secret), "{secret} shown in:\n{text}");
        }
        assert_eq!(
            shown.database.url,
            "postgresql://gateway:********@db.internal:5432/mcps"
        );
        assert_eq!(shown.upstreams["github"].env["GITHUB_TOKEN"], REDACTED);
        assert_eq!(shown.upstreams["github"].args, ["server-github"]);
        assert_eq!(
            shown.upstreams["remote"].url.as_deref(),
            Some("https://bot:********@mcp.example.com/mcp")
        );
        assert_eq!(
            shown.auth.oauth.unwrap().client_id.as_deref(),
            Some("gateway")
        );
    }

    #[test]
    fn what_was_shown_is_recognised_as_the_secret_kept() {
        assert!(is_shown_form("ghp_abc", REDACTED));
        assert!(is_shown_form(
            "https://bot:pass@h/mcp",
            "https://bot:********@h/mcp"
        ));
        assert!(!is_shown_form(
            "https://bot:pass@h/mcp",
            "https://bot:new@h/mcp"
        ));
        assert!(!is_shown_form("https://h/mcp", "https://h/mcp"));
    }

    #[test]
    fn unset_secrets_and_plain_paths_stay_as_they_are() {
        let shown = config("database: { url: ./data/mcps.db }\n").redacted();
        assert_eq!(shown.database.url, "./data/mcps.db");
        assert_eq!(shown.database.secret_key, "");
    }
}
