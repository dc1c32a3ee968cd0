//! The first hop of a connection to an upstream: straight to it, or through a proxy that
//! carries it whole — an HTTP proxy's `CONNECT` tunnel (in TLS to the proxy for an `https://`
//! proxy URL), or a SOCKS proxy (v5, with the user and password of its URL; v4). What goes
//! through is the upstream's own connection, TLS and all.
//!
//! As reqwest reads a SOCKS proxy's URL: `socks5://` and `socks4://` resolve the upstream's
//! name here (on tokio's resolver: hyper-util's own resolving blocks the thread it runs on),
//! `socks5h://` and `socks4a://` leave it to the proxy; a URL without a port means 1080.

use std::{
    error::Error,
    fmt::Display,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::{
    client::{
        legacy::connect::{
            HttpConnector,
            proxy::{SocksV4, SocksV5, Tunnel},
        },
        proxy::matcher::Intercept,
    },
    rt::TokioIo,
};
use tokio::net::TcpStream;
use tower_service::Service;

/// The port a SOCKS proxy's URL means when it names none.
const SOCKS_PORT: u16 = 1080;

/// How the gateway reaches a proxy: over TCP, in TLS when the proxy's URL is `https://`.
pub type ToProxy = HttpsConnector<HttpConnector>;

/// A connection's first hop, open: TCP, in TLS to a proxy spoken to in TLS. An https
/// upstream's own TLS goes inside it.
pub type HopIo = MaybeHttpsStream<TokioIo<TcpStream>>;

/// Opens a connection to the URL it is called with: straight, or through a proxy.
#[derive(Clone)]
pub enum Hop {
    Straight(HttpConnector),
    Tunnel(Tunnel<ToProxy>),
    Socks5(SocksV5<ToProxy>, Socks),
    Socks4(SocksV4<ToProxy>, Socks),
}

/// What the gateway keeps of a SOCKS proxy.
#[derive(Clone)]
pub struct Socks {
    /// Its address, for the errors.
    at: Arc<str>,
    /// Whether the upstream's name is resolved here (`socks5://`, `socks4://`).
    resolves_here: bool,
}

/// Why a connection failed, in words.
type Failure = Box<dyn Error + Send + Sync>;

/// A connection on its way.
type Connecting = Pin<Box<dyn Future<Output = Result<HopIo, Failure>> + Send>>;

/// How a proxy is spoken to, by its URL's scheme.
enum Way {
    /// An HTTP proxy's `CONNECT` tunnel (`http://`, `https://`).
    Tunnel,
    /// SOCKS, and whether the upstream's name is resolved here.
    Socks5 {
        resolves_here: bool,
    },
    Socks4 {
        resolves_here: bool,
    },
}

fn way(proxy: &Intercept) -> Option<Way> {
    Some(match proxy.uri().scheme_str()? {
        "http" | "https" => Way::Tunnel,
        "socks5" => Way::Socks5 {
            resolves_here: true,
        },
        "socks5h" => Way::Socks5 {
            resolves_here: false,
        },
        "socks4" => Way::Socks4 {
            resolves_here: true,
        },
        "socks4a" => Way::Socks4 {
            resolves_here: false,
        },
        _ => return None,
    })
}

impl Hop {
    /// The way through `proxy`, reached by `to_proxy`; `None` for a proxy of a scheme the
    /// gateway does not speak (none that the system's settings can name today).
    pub fn through(proxy: &Intercept, to_proxy: ToProxy) -> Option<Self> {
        let uri = proxy.uri();
        let (resolves_here, version) = match way(proxy)? {
            Way::Tunnel => {
                let tunnel = Tunnel::new(uri.clone(), to_proxy);
                return Some(Self::Tunnel(match proxy.basic_auth() {
                    Some(credentials) => tunnel.with_auth(credentials.clone()),
                    None => tunnel,
                }));
            }
            Way::Socks5 { resolves_here } => (resolves_here, 5),
            Way::Socks4 { resolves_here } => (resolves_here, 4),
        };
        let at: Arc<str> =
            format!("{}:{}", uri.host()?, uri.port_u16().unwrap_or(SOCKS_PORT)).into();
        let address = format!("http://{at}").parse().ok()?;
        let kept = Socks { at, resolves_here };
        Some(if version == 5 {
            let socks = SocksV5::new(address, to_proxy);
            let socks = match proxy.raw_auth() {
                Some((user, password)) => socks.with_auth(user.to_owned(), password.to_owned()),
                None => socks,
            };
            Self::Socks5(socks, kept)
        } else {
            Self::Socks4(SocksV4::new(address, to_proxy), kept)
        })
    }
}

impl Service<Uri> for Hop {
    type Response = HopIo;
    type Error = Failure;
    type Future = Connecting;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Failure>> {
        match self {
            Self::Straight(tcp) => tcp.poll_ready(context).map_err(Into::into),
            Self::Tunnel(tunnel) => tunnel.poll_ready(context).map_err(Into::into),
            Self::Socks5(socks, kept) => socks.poll_ready(context).map_err(|e| kept.failure(e)),
            Self::Socks4(socks, kept) => socks.poll_ready(context).map_err(|e| kept.failure(e)),
        }
    }

    /// `upstream` with its port said: a SOCKS proxy is asked for 443 when it is not.
    fn call(&mut self, upstream: Uri) -> Self::Future {
        match self {
            Self::Straight(tcp) => {
                let connecting = tcp.call(upstream);
                Box::pin(async move { Ok(MaybeHttpsStream::Http(connecting.await?)) })
            }
            Self::Tunnel(tunnel) => {
                let connecting = tunnel.call(upstream);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Self::Socks5(socks, kept) => kept.connect(socks.clone(), upstream, false),
            // SOCKS4 knows IPv4 addresses only.
            Self::Socks4(socks, kept) => kept.connect(socks.clone(), upstream, true),
        }
    }
}

impl Socks {
    /// A connection to `upstream` through the proxy, by `socks` (its SOCKS5 or SOCKS4
    /// handshake), the name resolved first if it is to be here (to an IPv4 address if `ipv4`).
    fn connect<S>(&self, mut socks: S, upstream: Uri, ipv4: bool) -> Connecting
    where
        S: Service<Uri, Response = HopIo> + Send + 'static,
        S::Future: Send,
        S::Error: Display,
    {
        let kept = self.clone();
        Box::pin(async move {
            let upstream = kept.address_of(upstream, ipv4).await?;
            socks.call(upstream).await.map_err(|e| kept.failure(e))
        })
    }

    /// What the proxy is asked to connect to: `upstream` as it is, or with its name resolved
    /// here to an address (an IPv4 one if `ipv4`).
    async fn address_of(&self, upstream: Uri, ipv4: bool) -> Result<Uri, Failure> {
        let (Some(host), Some(port)) = (upstream.host(), upstream.port_u16()) else {
            return Ok(upstream);
        };
        if !self.resolves_here || host.starts_with('[') || host.parse::<IpAddr>().is_ok() {
            return Ok(upstream);
        }
        let address = tokio::net::lookup_host((host, port))
            .await
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .find(|address| address.is_ipv4() || !ipv4)
            .ok_or_else(|| format!("{host} resolves to no address the proxy takes"))?;
        let mut parts = upstream.into_parts();
        parts.authority = Some(address.to_string().parse()?);
        Ok(Uri::from_parts(parts)?)
    }

    /// hyper-util's SOCKS errors name neither the proxy nor what failed under them ("failed
    /// to create underlying connection"): the proxy's address goes with them.
    fn failure(&self, error: impl Display) -> Failure {
        format!("through the SOCKS proxy at {}: {error}", self.at).into()
    }
}

/// TCP as the gateway connects to upstreams and proxies: no Nagle, any scheme (TLS is the
/// next layer's).
pub fn tcp() -> HttpConnector {
    let mut http = HttpConnector::new();
    // Nagle + delayed ACK turned 1 ms calls into 40 ms ones in our measurements.
    http.set_nodelay(true);
    // The https connector takes both schemes.
    http.enforce_http(false);
    http
}

/// `url` with its port said (`http` 80, `https` 443), as a SOCKS proxy must be asked.
pub fn with_port(url: &Uri) -> Uri {
    if url.port().is_some() {
        return url.clone();
    }
    let (Some(scheme), Some(host)) = (url.scheme_str(), url.host()) else {
        return url.clone();
    };
    let port = if scheme == "https" { 443 } else { 80 };
    let path = url.path_and_query().map_or("/", |path| path.as_str());
    format!("{scheme}://{host}:{port}{path}")
        .parse()
        .unwrap_or_else(|_| url.clone())
}

#[cfg(test)]
mod tests {
    use hyper_util::client::proxy::matcher::Matcher;

    use super::*;

    fn through(proxy: &str) -> Option<Hop> {
        let intercept = Matcher::builder()
            .all(proxy)
            .build()
            .intercept(&"http://upstream:8080/mcp".parse().unwrap())?;
        let to_proxy = crate::upstream::tls::https_or_http(tcp()).unwrap();
        Hop::through(&intercept, to_proxy)
    }

    #[test]
    fn each_proxy_the_settings_may_name_is_gone_through_as_reqwest_goes() {
        assert!(matches!(
            through("http://u:p@proxy:3128"),
            Some(Hop::Tunnel(_))
        ));
        let Some(Hop::Socks5(_, kept)) = through("socks5h://u:p@proxy") else {
            panic!("socks5h is SOCKS5");
        };
        assert_eq!(&*kept.at, "proxy:1080");
        assert!(matches!(
            through("socks5://proxy:9050"),
            Some(Hop::Socks5(..))
        ));
        assert!(matches!(
            through("socks4a://proxy:9050"),
            Some(Hop::Socks4(..))
        ));
        // Spoken to in TLS.
        assert!(matches!(
            through("https://u:p@proxy:3128"),
            Some(Hop::Tunnel(_))
        ));
    }

    #[tokio::test]
    async fn socks5_and_socks4_resolve_the_upstreams_name_here_and_the_others_leave_it() {
        let asked = async |proxy: &str, ipv4: bool| {
            let Some(Hop::Socks5(_, kept) | Hop::Socks4(_, kept)) = through(proxy) else {
                panic!("{proxy} is SOCKS");
            };
            let upstream = "http://localhost:8080/mcp".parse().unwrap();
            kept.address_of(upstream, ipv4).await.unwrap().to_string()
        };
        let here = asked("socks5://proxy:1080", false).await;
        assert!(
            ["http://127.0.0.1:8080/mcp", "http://[::1]:8080/mcp"].contains(&here.as_str()),
            "{here}"
        );
        assert_eq!(
            asked("socks4://proxy:1080", true).await,
            "http://127.0.0.1:8080/mcp"
        );
        assert_eq!(
            asked("socks5h://proxy:1080", false).await,
            "http://localhost:8080/mcp"
        );
    }

    #[test]
    fn a_socks_proxy_is_asked_for_the_upstreams_port_said() {
        let said = |url: &str| with_port(&url.parse().unwrap()).to_string();
        assert_eq!(said("http://upstream/mcp"), "http://upstream:80/mcp");
        assert_eq!(
            said("https://upstream/mcp?x=1"),
            "https://upstream:443/mcp?x=1"
        );
        assert_eq!(
            said("https://upstream:8443/mcp"),
            "https://upstream:8443/mcp"
        );
        assert_eq!(said("http://[::1]/mcp"), "http://[::1]:80/mcp");
    }
}
