//! Which browser a sign-in goes through: an id in a cookie of the gateway's own, set when a
//! browser first starts a sign-in at one of the gateway's pages. A user's sign-in is bound to
//! the browser that proved who they are, so an authorization URL (or an identity provider's
//! answer) passed on to someone else's browser finishes nothing: the phishing the MCP spec
//! warns of for URL elicitations.

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookie's name.
const COOKIE: &str = "mcps_browser";

/// How long a browser keeps its id: longer than any sign-in takes.
const KEPT_SECS: u32 = 24 * 3600;

/// The browser's id, from its cookie.
pub(super) fn id_of(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the request's cookie `name`, when not empty.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The browser's id, and the `Set-Cookie` that gives it one when it has none yet. `secure`:
/// the gateway is reached over https, so the cookie is sent only there.
pub(super) fn id_or_new(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    if let Some(id) = id_of(headers) {
        return (id.to_owned(), None);
    }
    let id = crate::security::random_id();
    // Lax: the authorization server's redirect back is a top-level navigation from its site.
    let mut cookie =
        format!("{COOKIE}={id}; Path=/oauth; HttpOnly; SameSite=Lax; Max-Age={KEPT_SECS}");
    if secure {
        cookie.push_str("; Secure");
    }
    let set = HeaderValue::from_str(&cookie).ok();
    (id, set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_read_among_other_cookies_and_made_when_missing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; mcps_browser=abc; b=2"),
        );
        assert_eq!(id_of(&headers), Some("abc"));
        assert_eq!(id_or_new(&headers, false), ("abc".to_owned(), None));
        let (id, set) = id_or_new(&HeaderMap::new(), true);
        let set = set.expect("a cookie to set");
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("mcps_browser={id};")), "{set}");
        assert!(set.contains("HttpOnly") && set.contains("Secure"), "{set}");
    }
}
