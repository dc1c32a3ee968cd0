//! How the lane's connections reach its upstream: straight, or through the proxy the system's
//! settings name (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, less `NO_PROXY`: the variables
//! reqwest reads, so that the lane goes where rmcp's client goes).
//!
//! Through a proxy, as reqwest goes:
//! - a plain-HTTP upstream's requests go to an HTTP proxy, each naming the whole URL it is for
//!   (absolute form) and carrying the proxy's credentials, if the proxy's URL has any;
//! - an https upstream's connections go through a `CONNECT` tunnel the proxy opens to it, and
//!   TLS runs inside, end to end: the proxy sees nothing of the requests;
//! - through a SOCKS proxy, every upstream's connections go whole (`proxied.rs`).
//!
//! A proxy spoken to in TLS is not for the lane: rmcp's client carries such an upstream's
//! calls ([`unspoken_proxy`]).

use bytes::Bytes;
use http::{
    HeaderValue, Request, Uri, header,
    uri::{Authority, Scheme},
};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::{
    client::{
        legacy::connect::HttpConnector,
        proxy::matcher::{Intercept, Matcher},
    },
    rt::TokioIo,
};
use tokio::net::TcpStream;
use tower_service::Service;

use super::proxied::{Proxied, carries, with_port};
use crate::error::with_causes;

/// What a connection to the upstream is, whichever way it goes.
pub type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The way to one upstream.
pub struct Route {
    connector: Connector,
    /// What the connector is called with: the upstream's URL, or that of the proxy that
    /// relays a plain-HTTP upstream's requests.
    dial: Uri,
    /// A plain-HTTP upstream's proxy: what its requests name and carry for it.
    forward: Option<Forward>,
}

enum Connector {
    /// To `dial` itself, in TLS when its scheme is `https`.
    Direct(HttpsConnector<HttpConnector>),
    /// Through a proxy that carries the connection whole, TLS inside it.
    Proxied(HttpsConnector<Proxied>),
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
                connector: Connector::Direct(tls(tcp())?),
                dial: proxy.uri().clone(),
                forward: Some(Forward {
                    scheme: Scheme::HTTP,
                    authority: authority.clone(),
                    authorization: proxy.basic_auth().cloned(),
                }),
            });
        }
        let Some(proxied) = Proxied::through(&proxy, tcp()) else {
            return Err(unspoken(&proxy).unwrap_or_default());
        };
        Ok(Self {
            connector: Connector::Proxied(tls(proxied)?),
            dial: with_port(url),
            forward: None,
        })
    }

    /// The way straight to `url`, whatever the system's proxy settings say.
    pub fn direct(url: &Uri) -> Result<Self, String> {
        Ok(Self {
            connector: Connector::Direct(tls(tcp())?),
            dial: url.clone(),
            forward: None,
        })
    }

    /// A new connection to the upstream, or to its proxy; the error says why not, in words.
    pub async fn connect(&self) -> Result<Io, String> {
        let connected = match &self.connector {
            Connector::Direct(connector) => connector.clone().call(self.dial.clone()).await,
            Connector::Proxied(connector) => connector.clone().call(self.dial.clone()).await,
        };
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

/// Whether `proxy` is an HTTP proxy, which relays a plain-HTTP upstream's requests.
fn relays(proxy: &Intercept) -> bool {
    proxy.uri().scheme_str() == Some("http")
}

/// The way through the proxy the system's settings name for `url` (`http://` or `https://`,
/// its port said), with the credentials in the proxy's URL: a `CONNECT` tunnel or a SOCKS
/// proxy's connection; none when they name none, or one spoken to in TLS. A WebSocket
/// upstream's connection goes through one whatever its scheme, as browsers' and curl's do.
pub fn proxy_connector(url: &Uri) -> Option<Proxied> {
    Proxied::through(&Matcher::from_system().intercept(url)?, tcp())
}

/// Why the lane cannot go the way the system's proxy settings send requests to `url`, if
/// they send them through a proxy it does not speak: rmcp's client (reqwest) then carries
/// them.
pub fn unspoken_proxy(url: &Uri) -> Option<String> {
    Matcher::from_system()
        .intercept(url)
        .as_ref()
        .and_then(unspoken)
}

fn unspoken(proxy: &Intercept) -> Option<String> {
    (!carries(proxy)).then(|| {
        format!(
            "the system's proxy settings send its requests through a proxy spoken to in {}",
            proxy.uri().scheme_str().unwrap_or("an unknown scheme")
        )
    })
}

/// TCP as the lane connects: no Nagle, any scheme (TLS is the next layer's).
fn tcp() -> HttpConnector {
    let mut http = HttpConnector::new();
    // Nagle + delayed ACK turned 1 ms calls into 40 ms ones in our measurements.
    http.set_nodelay(true);
    // The https connector takes both schemes.
    http.enforce_http(false);
    http
}

/// TLS over `inner` for `https` URLs (`upstream/tls.rs`); plain for `http`.
fn tls<C>(inner: C) -> Result<HttpsConnector<C>, String> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(crate::upstream::tls::client_config()?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(inner))
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
            connector: Connector::Direct(tls(tcp()).unwrap()),
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
