//! The headers every request of the lane carries, made once per lane where they can be.

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderMap, HeaderName, HeaderValue, Uri, header};
use percent_encoding::percent_decode_str;
use url::Url;

use super::JSON;
use crate::{
    mcp_headers::{self, arguments},
    upstream::{lane::LaneError, mirrored::Mirrored},
};

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

/// Takes the user and password out of `url`, if it carries any; the `Authorization: Basic`
/// header they make (RFC 7617), as reqwest, under rmcp's client, sends for them: decoded
/// from the URL's percent-encoding, and kept out of logs.
pub(super) fn take_credentials(url: &mut Url) -> Option<HeaderValue> {
    let (user, password) = (url.username(), url.password());
    if user.is_empty() && password.is_none() {
        return None;
    }
    let mut pair: Vec<u8> = percent_decode_str(user).collect();
    pair.push(b':');
    pair.extend(percent_decode_str(password.unwrap_or_default()));
    // Cannot fail: an http(s) URL with a user has a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair))).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `Authorization: Bearer` with `token`, kept out of logs.
pub(super) fn bearer_header(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// The SEP-2243 headers of a 2026-07-28 request of `method`: `Mcp-Method`, and what
/// `mirrored` says of it (`Mcp-Name`, `Mcp-Param-*`).
pub(super) fn with_mirrored(
    headers: &mut HeaderMap,
    method: &str,
    mirrored: &Mirrored,
) -> Result<(), LaneError> {
    headers.insert(mcp_headers::METHOD, header_value(method)?);
    if let Some(name) = &mirrored.name {
        headers.insert(mcp_headers::NAME, mirrored_text(name)?);
    }
    for (header, text) in &mirrored.arguments {
        let name = HeaderName::from_bytes(format!("{}{header}", mcp_headers::PARAM_PREFIX).as_bytes())
            .map_err(|_| {
                LaneError::Http(format!(
                    "cannot write a request to it: `{header}` (a tool's x-mcp-header) cannot name a header"
                ))
            })?;
        headers.insert(name, mirrored_text(text)?);
    }
    Ok(())
}

/// `text` (a tool's name, an argument's value) as SEP-2243 mirrors it in a header.
fn mirrored_text(text: &str) -> Result<HeaderValue, LaneError> {
    header_value(&arguments::encoded(text))
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

    #[test]
    fn a_urls_user_and_password_become_basic_credentials_and_leave_the_url() {
        // RFC 7617's example, its password percent-encoded in the URL.
        let mut url = Url::parse("https://Aladdin:open%20sesame@example.com/mcp").unwrap();
        let value = take_credentials(&mut url).unwrap();
        assert_eq!(value, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(value.is_sensitive());
        assert_eq!(url.as_str(), "https://example.com/mcp");

        let mut only_user = Url::parse("http://token@example.com/").unwrap();
        assert_eq!(take_credentials(&mut only_user).unwrap(), "Basic dG9rZW46");
        let mut none = Url::parse("http://example.com/").unwrap();
        assert!(take_credentials(&mut none).is_none());
    }

    #[test]
    fn a_request_says_its_method_name_and_header_arguments_again() {
        let mut headers = HeaderMap::new();
        let mirrored = Mirrored {
            name: Some("café".into()),
            arguments: vec![
                ("Region".into(), "eu-west".into()),
                ("Place".into(), "Zürich".into()),
            ],
        };
        with_mirrored(&mut headers, "tools/call", &mirrored).unwrap();
        assert_eq!(headers["mcp-method"], "tools/call");
        assert_eq!(headers["mcp-name"], "=?base64?Y2Fmw6k=?=");
        assert_eq!(headers["mcp-param-region"], "eu-west");
        assert_eq!(headers["mcp-param-place"], "=?base64?WsO8cmljaA==?=");
        assert_eq!(headers.len(), 4);

        let unnamed = Mirrored {
            name: None,
            arguments: vec![("Not a token".into(), "x".into())],
        };
        let error = with_mirrored(&mut HeaderMap::new(), "tools/call", &unnamed).unwrap_err();
        assert!(error.to_string().contains("`Not a token`"), "{error}");
    }

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
