//! Redirects from an HTTP upstream: followed when they keep the request as it is (307, 308)
//! and stay on the upstream's origin; refused otherwise, naming where they pointed.
//!
//! The official SDKs' clients follow redirects (fetch in TypeScript, httpx in Python), and
//! servers send them: Starlette, under FastAPI and the Python SDK alike, answers a request
//! for a mounted app's path without its final slash (`/mcp`) with a 307 to the path with it
//! (`/mcp/`). A gateway that followed none could not reach a server a client reaches
//! directly. One that followed any would send its requests, with the upstream's credentials,
//! wherever the upstream named: to another host than the one the operator configured, or
//! to an address of the gateway's own network. A redirect within the origin (scheme, host and
//! port) reaches only the server the operator named. A 301, 302 or 303 turns a POST into a
//! GET, as fetch and httpx do, which no MCP endpoint answers with a response.
//!
//! A redirect is followed on every request, as HTTP asks: the operator is told once per
//! connection, in the log, which URL to configure to save the round trip. Every connection
//! starts with a handshake through rmcp's client, whose policy ([`policy`]) tells; the
//! gateway's own lane (`http_lane/follow.rs`) follows the same redirects after it.
//!
//! A WebSocket upstream's upgrade is a GET without a body, which every redirect keeps, within
//! the same origin ([`upgrade_target`]; tungstenite follows none itself). nginx answers a
//! proxied location's path without its final slash (`/ws`) with a 301 to the path with it.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use http::StatusCode;
use url::Url;

/// What a refusal tells the operator to do.
const CONFIGURE: &str = "configure its url as that, if it is the server you meant";

/// Redirects followed in a row at most, as reqwest's default policy.
pub const MOST_IN_A_ROW: usize = 10;

/// Whether `status` redirects the request (not 300's choices, not 304's cache).
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Why the gateway does not follow a redirect from `from` to `to` with `status`, after
/// `followed` others in a row; `None` when it does.
pub fn refusal(status: StatusCode, from: &Url, to: &Url, followed: usize) -> Option<String> {
    if status != StatusCode::TEMPORARY_REDIRECT && status != StatusCode::PERMANENT_REDIRECT {
        return Some(format!(
            "it redirects {from} to {to} with HTTP {status}, which would turn a POST into a GET: \
             the gateway follows only 307 and 308; {CONFIGURE}"
        ));
    }
    beyond_reach(from, to, followed)
}

/// Why a redirect from `from` to `to`, after `followed` others in a row, goes further than
/// the gateway follows any: off the upstream's origin, or one too many.
fn beyond_reach(from: &Url, to: &Url, followed: usize) -> Option<String> {
    if to.origin() != from.origin() {
        return Some(format!(
            "it redirects {from} to {to}, another origin than its own: the gateway follows \
             redirects only within the upstream's scheme, host and port; {CONFIGURE}"
        ));
    }
    if followed >= MOST_IN_A_ROW {
        return Some(format!(
            "it redirected {MOST_IN_A_ROW} times in a row, last to {to}"
        ));
    }
    None
}

/// Where the redirect of a WebSocket upgrade sent to `from` leads, given its `location`, after
/// `followed` others in a row; or why the gateway does not go there. Any redirect keeps the
/// upgrade, a GET without a body. A server writes a `Location` for the HTTP request it saw
/// (nginx's `http://host/ws/`): there `http` stands for `ws`, and `https` for `wss`.
pub fn upgrade_target(from: &Url, location: &str, followed: usize) -> Result<Url, String> {
    let mut to = from
        .join(location)
        .map_err(|error| format!("it redirects to {location:?}, which is no URL: {error}"))?;
    let upgraded = match to.scheme() {
        "http" => Some("ws"),
        "https" => Some("wss"),
        _ => None,
    };
    if let Some(scheme) = upgraded {
        // Both are special schemes: the change cannot fail.
        let _ = to.set_scheme(scheme);
    }
    beyond_reach(from, &to, followed).map_or(Ok(to), Err)
}

/// Tells the operator, once, that an upstream's URL redirects.
#[derive(Debug, Default)]
struct Told(AtomicBool);

impl Told {
    fn followed(&self, upstream: &str, status: StatusCode, from: &Url, to: &Url) {
        if !self.0.swap(true, Ordering::Relaxed) {
            followed(upstream, "request", status, from, to);
        }
    }
}

/// Tells the operator that `upstream`'s URL redirects, and what each `what` (a request, a
/// connection) pays for it.
pub fn followed(upstream: &str, what: &str, status: StatusCode, from: &Url, to: &Url) {
    tracing::warn!(
        upstream,
        "{from} redirects to {to} (HTTP {status}): every {what} follows it, a round trip more \
         each; configure its url as {to}"
    );
}

/// reqwest's redirect policy for `upstream`'s connections (see the module's text).
pub fn policy(upstream: &str) -> reqwest::redirect::Policy {
    let upstream: Arc<str> = upstream.into();
    let told = Told::default();
    reqwest::redirect::Policy::custom(move |attempt| {
        let previous = attempt.previous();
        let Some(from) = previous.last() else {
            return attempt.stop();
        };
        match refusal(attempt.status(), from, attempt.url(), previous.len() - 1) {
            None => {
                told.followed(&upstream, attempt.status(), from, attempt.url());
                attempt.follow()
            }
            Some(why) => attempt.error(why),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn a_307_or_308_within_the_origin_is_followed() {
        let from = url("http://127.0.0.1:8000/mcp");
        for status in [
            StatusCode::TEMPORARY_REDIRECT,
            StatusCode::PERMANENT_REDIRECT,
        ] {
            assert_eq!(
                refusal(status, &from, &url("http://127.0.0.1:8000/mcp/"), 0),
                None
            );
        }
        // The scheme's own port, written or not, is the same origin.
        assert_eq!(
            refusal(
                StatusCode::TEMPORARY_REDIRECT,
                &url("https://example.com/mcp"),
                &url("https://example.com:443/v2/mcp?x=1"),
                3
            ),
            None
        );
    }

    #[test]
    fn another_origin_is_refused_naming_where_it_pointed() {
        let from = url("http://example.com/mcp");
        for to in [
            "https://example.com/mcp",
            "http://example.com:8080/mcp",
            "http://other.example.com/mcp",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let why = refusal(StatusCode::TEMPORARY_REDIRECT, &from, &url(to), 0)
                .unwrap_or_else(|| panic!("followed a redirect to {to}"));
            assert!(why.contains(to) && why.contains("another origin"), "{why}");
        }
    }

    #[test]
    fn a_redirect_that_turns_a_post_into_a_get_is_refused() {
        let from = url("http://example.com/mcp");
        for status in [
            StatusCode::MOVED_PERMANENTLY,
            StatusCode::FOUND,
            StatusCode::SEE_OTHER,
        ] {
            let why = refusal(status, &from, &url("http://example.com/mcp/"), 0)
                .unwrap_or_else(|| panic!("followed a {status}"));
            assert!(why.contains("only 307 and 308"), "{why}");
        }
    }

    #[test]
    fn an_upgrade_follows_any_redirect_within_its_origin_written_in_http_or_ws() {
        let from = url("ws://127.0.0.1:8000/ws");
        for (location, leads_to) in [
            ("/ws/", "ws://127.0.0.1:8000/ws/"),
            ("http://127.0.0.1:8000/ws/", "ws://127.0.0.1:8000/ws/"),
            ("ws://127.0.0.1:8000/v2?x=1", "ws://127.0.0.1:8000/v2?x=1"),
        ] {
            assert_eq!(upgrade_target(&from, location, 0), Ok(url(leads_to)));
        }
        let secure = url("wss://example.com/ws");
        assert_eq!(
            upgrade_target(&secure, "https://example.com:443/ws/", 9),
            Ok(url("wss://example.com/ws/"))
        );
    }

    #[test]
    fn an_upgrade_is_not_followed_off_its_origin_nor_round_and_round() {
        let from = url("wss://example.com/ws");
        for location in [
            "ws://example.com/ws/",
            "http://example.com/ws/",
            "wss://other.example.com/ws",
            "https://example.com:8443/ws",
        ] {
            let why = upgrade_target(&from, location, 0).unwrap_err();
            assert!(why.contains("another origin"), "{location}: {why}");
        }
        let why = upgrade_target(&from, "/ws", MOST_IN_A_ROW).unwrap_err();
        assert!(why.contains("10 times in a row"), "{why}");
    }

    #[test]
    fn a_loop_ends() {
        let from = url("http://example.com/a");
        let to = url("http://example.com/b");
        let status = StatusCode::TEMPORARY_REDIRECT;
        assert_eq!(refusal(status, &from, &to, MOST_IN_A_ROW - 1), None);
        let why = refusal(status, &from, &to, MOST_IN_A_ROW).unwrap();
        assert!(why.contains("10 times in a row"), "{why}");
    }
}
