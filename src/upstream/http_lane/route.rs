//! How the lane's connections reach its upstream: straight, or through the proxy the system's
//! settings name (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, less `NO_PROXY`: the variables
//! reqwest reads, so that the lane goes where rmcp's client goes).
//!
//! Through a proxy, as reqwest goes:
//! - a plain-HTTP upstream's requests go to an HTTP proxy, each naming the whole URL it is for
//!   (absolute form) and carrying the proxy's credentials, if the proxy's URL has any;
//! - an https upstream's connections go through a `CONNECT` tunnel the proxy opens to it, and
//!   TLS runs inside, end to end: the proxy sees nothing of the requests;
//! - through a SOCKS proxy, every upstream's connections go whole (`hop.rs`).
//!
//! An HTTP proxy whose URL is `https://` is spoken to in TLS, verified as an upstream is
//! (`upstream/tls.rs`); an https upstream's TLS then runs inside that of the tunnel.

use bytes::Bytes;
use http::{
    HeaderValue, Request, Uri, header,
    uri::{Authority, Scheme},
};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use tower_service::Service;

use super::hop::{Hop, HopIo, tcp, with_port};
use crate::{error::with_causes, upstream::tls::https_or_http};

/// What a connection to the upstream is, whichever way it goes: its first hop, and the
/// upstream's TLS over it for an https upstream.
pub type Io = MaybeHttpsStream<HopIo>;

/// The way to one upstream.
pub struct Route {
    /// Its first hop, and TLS to the upstream over it for an https upstream.
    connector: HttpsConnector<Hop>,
    /// What the connector is called with: the upstream's URL, or that of the proxy that
    /// relays a plain-HTTP upstream's requests.
    dial: Uri,
    /// A plain-HTTP upstream's proxy: what its requests name and carry for it.
    forward: Option<Forward>,
}

/// What a request relayed by a proxy carries: the upstream's origin, for the absolute form,
/// and the proxy's credentials.
struct Forward {
    scheme: Scheme,
    authority: Authority,
    authorization: Option<HeaderValue>,
}

impl Route {
    /// The way to `url` (`http://` or `https://`, no user or password in it), by the system's
    /// proxy settings.
    pub fn to(url: &Uri) -> Result<Self, String> {
        let Some(proxy) = Matcher::from_system().intercept(url) else {
            return Self::direct(url);
        };
        if url.scheme() == Some(&Scheme::HTTP) && relays(&proxy) {
            let Some(authority) = url.authority() else {
                return Err(format!("its URL {url} names no host"));
            };
            return Ok(Self {
                // In TLS to an `https://` proxy.
                connector: https_or_http(Hop::Straight(tcp()))?,
                dial: proxy.uri().clone(),
                forward: Some(Forward {
                    scheme: Scheme::HTTP,
                    authority: authority.clone(),
                    authorization: proxy.basic_auth().cloned(),
                }),
            });
        }
        Ok(Self {
            connector: https_or_http(through(&proxy)?)?,
            dial: with_port(url),
            forward: None,
        })
    }

    /// The way straight to `url`, whatever the system's proxy settings say.
    pub fn direct(url: &Uri) -> Result<Self, String> {
        Ok(Self {
            connector: https_or_http(Hop::Straight(tcp()))?,
            dial: url.clone(),
            forward: None,
        })
    }

    /// A new connection to the upstream, or to its proxy; the error says why not, in words.
    pub async fn connect(&self) -> Result<Io, String> {
        let connected = self.connector.clone().call(self.dial.clone()).await;
        connected.map_err(|error| format!("cannot connect to it: {}", with_causes(&*error)))
    }

    /// Whether a proxy relays the requests, reading their heads (a plain-HTTP upstream's).
    pub fn relayed(&self) -> bool {
        self.forward.is_some()
    }

    /// Makes `request` (origin form) one for the way it goes: through a plain-HTTP proxy, it
    /// names the whole URL and carries the proxy's credentials.
    pub fn address(&self, request: &mut Request<Full<Bytes>>) {
        let Some(forward) = &self.forward else {
            return;
        };
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(forward.scheme.clone());
        parts.authority = Some(forward.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        // Scheme, authority and path: every part a URI needs.
        if let Ok(absolute) = Uri::from_parts(parts) {
            *request.uri_mut() = absolute;
        }
        if let Some(credentials) = &forward.authorization {
            request
                .headers_mut()
                .insert(header::PROXY_AUTHORIZATION, credentials.clone());
        }
    }
}

/// Whether a proxy the system's settings name relays the requests to `url` (a plain-HTTP
/// URL), reading their heads: they are then written with their header names in Title-Case, as
/// curl and browsers write HTTP/1.1. Names are case-insensitive, but not to every proxy:
/// proxy.py (2.4.10) matches them by case as it rebuilds a request, and sends a lowercase
/// `content-length` on with a `Content-Length` of its own, which Node's servers refuse (HTTP
/// 400, a duplicate length).
pub fn relayed_by_a_proxy(url: &Uri) -> bool {
    url.scheme() == Some(&Scheme::HTTP)
        && Matcher::from_system()
            .intercept(url)
            .is_some_and(|proxy| relays(&proxy))
}

/// Whether `proxy` is an HTTP proxy (spoken to in TLS or not), which relays a plain-HTTP
/// upstream's requests.
fn relays(proxy: &Intercept) -> bool {
    matches!(proxy.uri().scheme_str(), Some("http" | "https"))
}

/// The way through the proxy the system's settings name for `url` (`http://` or `https://`,
/// its port said), with the credentials in the proxy's URL: a `CONNECT` tunnel or a SOCKS
/// proxy's connection; none when they name none. A WebSocket upstream's connection goes
/// through one whatever its scheme, as browsers' and curl's do.
pub fn proxy_connector(url: &Uri) -> Result<Option<Hop>, String> {
    let Some(proxy) = Matcher::from_system().intercept(url) else {
        return Ok(None);
    };
    through(&proxy).map(Some)
}

/// The way through `proxy` (TLS to it for an `https://` URL); an error for a scheme the
/// gateway does not speak (none that the system's settings can name today).
fn through(proxy: &Intercept) -> Result<Hop, String> {
    Hop::through(proxy, https_or_http(tcp())?).ok_or_else(|| {
        format!(
            "the system's proxy settings send its requests through a proxy spoken to in {}, \
             which the gateway does not speak",
            proxy.uri().scheme_str().unwrap_or("an unknown scheme")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addressed(route: &Route, target: &str) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = target.parse().unwrap();
        route.address(&mut request);
        request
    }

    #[test]
    fn a_request_through_a_plain_proxy_names_the_whole_url_and_carries_its_credentials() {
        let route = Route {
            connector: https_or_http(Hop::Straight(tcp())).unwrap(),
            dial: "http://proxy:3128".parse().unwrap(),
            forward: Some(Forward {
                scheme: Scheme::HTTP,
                authority: "upstream:8080".parse().unwrap(),
                authorization: Some(HeaderValue::from_static("Basic dTpw")),
            }),
        };
        let request = addressed(&route, "/mcp?x=1");
        assert_eq!(request.uri(), "http://upstream:8080/mcp?x=1");
        assert_eq!(request.headers()[header::PROXY_AUTHORIZATION], "Basic dTpw");
    }

    #[test]
    fn a_request_straight_to_the_upstream_stays_as_it_is() {
        let route = Route::direct(&"http://upstream:8080/mcp".parse().unwrap()).unwrap();
        let request = addressed(&route, "/mcp");
        assert_eq!(request.uri(), "/mcp");
        assert!(request.headers().is_empty());
    }
}
