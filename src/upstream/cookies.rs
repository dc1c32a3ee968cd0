//! The cookies an HTTP upstream sets, sent back on the later requests of the same connection.
//!
//! A session-era server with several instances behind a load balancer holds each session on
//! one of them, and the balancer keeps a client on that instance with a cookie: AWS ALB's
//! `AWSALB`, ingress-nginx's affinity cookie, Cloud Run's session affinity. A client that
//! drops the cookie lands on another instance, which knows no such session ("session not
//! found"). The Python SDK's client (httpx) keeps cookies, and so does mcp-remote.
//!
//! One jar per connection: a new connection opens a new session, wherever the balancer puts
//! it. Requests go to the upstream's origin only (redirects are followed within it, see
//! `redirects.rs`), so a cookie reaches nothing else. RFC 6265's rules (path, expiry,
//! `Secure` only over https) are those of reqwest's jar. Cookies are kept from memory only,
//! never written anywhere, and their values are marked sensitive so that no log shows them.

use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderValue, header};
use reqwest::cookie::{CookieStore, Jar};
use url::Url;

/// The cookies one upstream connection was given.
#[derive(Debug, Default)]
pub struct Cookies {
    jar: Jar,
    /// Whether the upstream ever set one: most never do, and then no request looks.
    any: AtomicBool,
}

impl Cookies {
    /// Keeps the cookies `headers` (a response to a request for `url`) set.
    pub fn heard(&self, headers: &HeaderMap, url: &Url) {
        self.set_cookies(&mut headers.get_all(header::SET_COOKIE).iter(), url);
    }

    /// Whether a response to a request for `url` would be worth [`Cookies::heard`]: it sets
    /// a cookie.
    pub fn sets_any(headers: &HeaderMap) -> bool {
        headers.contains_key(header::SET_COOKIE)
    }

    /// The `Cookie` header a request for `url` carries, if any.
    pub fn header(&self, url: &Url) -> Option<HeaderValue> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let mut value = self.jar.cookies(url)?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Whether the upstream set any cookie yet.
    pub fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Relaxed)
    }
}

/// What rmcp's client (reqwest) keeps and sends: the same jar the gateway's lane uses.
impl CookieStore for Cookies {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let mut set = cookie_headers.peekable();
        if set.peek().is_none() {
            return;
        }
        self.jar.set_cookies(&mut set, url);
        self.any.store(true, Ordering::Relaxed);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        self.header(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn response_setting(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(header::SET_COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        headers
    }

    #[test]
    fn a_balancers_cookie_goes_back_on_later_requests() {
        let cookies = Cookies::default();
        let mcp = url("http://127.0.0.1:8000/mcp");
        assert_eq!(cookies.header(&mcp), None);
        assert!(!Cookies::sets_any(&HeaderMap::new()));
        let set = response_setting(&["AWSALB=abc; Path=/", "other=1; Path=/mcp; HttpOnly"]);
        assert!(Cookies::sets_any(&set));
        cookies.heard(&set, &mcp);
        let header = cookies.header(&url("http://127.0.0.1:8000/mcp/")).unwrap();
        let text = header.to_str().unwrap();
        assert!(
            text.contains("AWSALB=abc") && text.contains("other=1"),
            "{text}"
        );
        assert!(header.is_sensitive());
        // Its path only.
        let elsewhere = cookies.header(&url("http://127.0.0.1:8000/api")).unwrap();
        assert_eq!(elsewhere.to_str().unwrap(), "AWSALB=abc");
    }

    #[test]
    fn expired_secure_and_foreign_cookies_are_not_sent() {
        let cookies = Cookies::default();
        let mcp = url("http://example.com/mcp");
        cookies.heard(
            &response_setting(&[
                "gone=1; Path=/; Max-Age=0",
                "tls=1; Path=/; Secure",
                "foreign=1; Path=/; Domain=other.example.org",
            ]),
            &mcp,
        );
        assert_eq!(cookies.header(&mcp), None);
        assert!(
            cookies
                .header(&url("https://example.com/mcp"))
                .is_some_and(|value| value.to_str().unwrap() == "tls=1")
        );
    }
}
