//! The headers every request of the lane carries, made once per lane where they can be.

use http::{HeaderMap, HeaderValue, Uri, header};

use super::JSON;
use crate::upstream::lane::LaneError;

/// What every POST carries: `headers` and the JSON-RPC media types.
pub(super) fn post_headers(headers: &HeaderMap) -> HeaderMap {
    let mut post = headers.clone();
    post.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    post.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    post
}

/// `headers` with the `Host` of `url`, unless the operator configured one: requests name
/// only the URL's path (`wire.rs`).
pub(super) fn with_host(headers: &mut HeaderMap, url: &Uri) {
    if let Some(host) = url.host()
        && !headers.contains_key(header::HOST)
    {
        // As hyper's client writes it: the port only when it is not the scheme's own.
        let port = url.port_u16().filter(|port| {
            !matches!(
                (url.scheme_str(), port),
                (Some("https"), 443) | (Some("http"), 80)
            )
        });
        let host = match port {
            Some(port) => HeaderValue::from_str(&format!("{host}:{port}")),
            None => HeaderValue::from_str(host),
        };
        if let Ok(host) = host {
            headers.insert(header::HOST, host);
        }
    }
}

/// `Authorization: Bearer` with `token`, kept out of logs.
pub(super) fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `text` as a header's value; a request that cannot carry it is not sent. The error does
/// not repeat the text: it may be a session's id.
pub(super) fn header_value(text: &str) -> Result<HeaderValue, LaneError> {
    HeaderValue::from_str(text).map_err(|_| {
        LaneError::Http(
            "cannot write a request to it: a header would hold a control character".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

    fn host(url: &str, configured: &[(&str, &str)]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for (name, value) in configured {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        with_host(&mut headers, &url.parse().unwrap());
        let post = post_headers(&headers);
        assert_eq!(post[header::CONTENT_TYPE], JSON);
        assert_eq!(post[header::ACCEPT], "application/json, text/event-stream");
        post.get(header::HOST)
            .map(|host| host.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_post_names_its_host_as_hyper_would_unless_the_operator_did() {
        assert_eq!(
            host("http://127.0.0.1:8080/mcp", &[]).unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            host("http://example.com:80/mcp", &[]).unwrap(),
            "example.com"
        );
        assert_eq!(host("https://example.com/mcp", &[]).unwrap(), "example.com");
        assert_eq!(
            host("https://example.com:8443/", &[]).unwrap(),
            "example.com:8443"
        );
        assert_eq!(host("http://[::1]:9/mcp", &[]).unwrap(), "[::1]:9");
        assert_eq!(
            host("http://10.0.0.1:8080/mcp", &[("host", "mcp.internal")]).unwrap(),
            "mcp.internal"
        );
    }
}
