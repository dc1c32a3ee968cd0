//! `Host` and `Origin` validation against DNS rebinding.
//!
//! A web page the user visits can make their browser send requests to `127.0.0.1:8000`; the
//! browser then sets `Origin` to the page's origin, and a rebinding attack sets `Host` to the
//! attacker's name. So: `Host` must be a loopback name, the listen address, or one the operator
//! allowed; `Origin`, when present, must be loopback or allowed; and a request carrying two
//! `Origin` headers is refused outright (which one a component reads would be a guess).

use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, Uri, header};

/// Why a request was refused; the message is safe to send back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// The hosts and origins the HTTP front door accepts.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Lowercase `host` or `host:port` entries; `*` accepts any host.
    allowed_hosts: Vec<String>,
    /// Lowercase `scheme://host[:port]` entries, or `null`.
    allowed_origins: Vec<String>,
}

impl OriginPolicy {
    /// Loopback always; plus the listen address when it is a specific IP; plus the operator's lists.
    pub fn new(listen: SocketAddr, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let mut hosts: Vec<String> = allowed_hosts
            .iter()
            .map(|host| host.to_ascii_lowercase())
            .collect();
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            hosts.push(listen.ip().to_string());
        }
        Self {
            allowed_hosts: hosts,
            allowed_origins: allowed_origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Accepts or refuses a request by its headers and URI (HTTP/2 carries the host in the URI).
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Rejection> {
        self.check_host(headers, uri)?;
        self.check_origin(headers)
    }

    /// Read for every request, so compared in place rather than lowercased into a copy.
    fn check_host(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Rejection> {
        if self.allowed_hosts.iter().any(|host| host == "*") {
            return Ok(());
        }
        let authority = match headers.get(header::HOST) {
            Some(value) => value
                .to_str()
                .map_err(|_| Rejection("the Host header is not valid text".into()))?,
            None => match uri.authority() {
                Some(authority) => authority.as_str(),
                None => return Err(Rejection("the request has no Host header".into())),
            },
        };
        let host = strip_port(authority);
        if is_loopback_host(host)
            || self.allowed_hosts.iter().any(|allowed| {
                allowed.eq_ignore_ascii_case(host) || allowed.eq_ignore_ascii_case(authority)
            })
        {
            return Ok(());
        }
        Err(Rejection(format!(
            "Host {:?} is not allowed; add it to server.allowed_hosts",
            authority.to_ascii_lowercase()
        )))
    }

    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else {
            // Not a browser request (or a same-origin GET): nothing to check.
            return Ok(());
        };
        if origins.next().is_some() {
            return Err(Rejection("more than one Origin header".into()));
        }
        let origin = origin
            .to_str()
            .map_err(|_| Rejection("the Origin header is not valid text".into()))?
            .trim_end_matches('/')
            .to_ascii_lowercase();
        if self.allowed_origins.contains(&origin) {
            return Ok(());
        }
        let loopback = origin
            .parse::<Uri>()
            .ok()
            .filter(|uri| matches!(uri.scheme_str(), Some("http" | "https")))
            .and_then(|uri| uri.host().map(is_loopback_host))
            .unwrap_or(false);
        if loopback {
            return Ok(());
        }
        Err(Rejection(format!(
            "Origin {origin:?} is not allowed; add it to server.allowed_origins"
        )))
    }
}

/// `host:port` → `host`, `[::1]:80` → `[::1]`.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// `localhost`, a name under it, or a loopback address, in any case.
fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    is_localhost_name(bare) || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a host name is `localhost` or a name under it, in any case, compared in place.
pub fn is_localhost_name(name: &str) -> bool {
    const UNDER: &[u8] = b".localhost";
    let name = name.as_bytes();
    name.eq_ignore_ascii_case(b"localhost")
        || (name.len() >= UNDER.len()
            && name[name.len() - UNDER.len()..].eq_ignore_ascii_case(UNDER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OriginPolicy {
        OriginPolicy::new(
            "127.0.0.1:8000".parse().unwrap(),
            &["gw.example.com".into()],
            &["https://app.example.com".into()],
        )
    }

    fn check(pairs: &[(&str, &str)]) -> Result<(), Rejection> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        policy().check(&headers, &Uri::from_static("/mcp"))
    }

    #[test]
    fn loopback_hosts_and_origins_pass() {
        assert!(check(&[("host", "127.0.0.1:8000")]).is_ok());
        assert!(
            check(&[
                ("host", "localhost:8000"),
                ("origin", "http://localhost:3000")
            ])
            .is_ok()
        );
        assert!(check(&[("host", "[::1]:8000"), ("origin", "http://[::1]:5173")]).is_ok());
    }

    #[test]
    fn foreign_origin_is_refused() {
        assert!(
            check(&[
                ("host", "127.0.0.1:8000"),
                ("origin", "https://evil.example")
            ])
            .is_err()
        );
    }

    #[test]
    fn allowed_origin_and_host_pass() {
        assert!(
            check(&[
                ("host", "gw.example.com"),
                ("origin", "https://app.example.com/")
            ])
            .is_ok()
        );
    }

    #[test]
    fn rebinding_host_is_refused() {
        assert!(check(&[("host", "evil.example:8000")]).is_err());
    }

    #[test]
    fn two_origins_are_refused_even_if_both_are_fine() {
        let result = check(&[
            ("host", "127.0.0.1"),
            ("origin", "http://localhost"),
            ("origin", "http://localhost"),
        ]);
        assert_eq!(result.unwrap_err().0, "more than one Origin header");
    }

    #[test]
    fn hosts_are_compared_in_any_case() {
        assert!(check(&[("host", "LOCALHOST:8000")]).is_ok());
        assert!(check(&[("host", "App.LocalHost:8000")]).is_ok());
        assert!(check(&[("host", "GW.Example.com")]).is_ok());
        let refused = check(&[("host", "Evil.Example:8000")]).unwrap_err();
        assert!(refused.0.contains("\"evil.example:8000\""), "{refused}");
        assert!(check(&[("host", "xlocalhost")]).is_err());
    }

    #[test]
    fn look_alike_loopback_names_are_refused() {
        assert!(check(&[("host", "127.0.0.1.evil.example")]).is_err());
        assert!(check(&[("host", "localhost.evil.example")]).is_err());
    }
}
