//! The HTTP client under the lane: hyper's pooled client, on the connector reqwest builds
//! on, without reqwest's layers.
//!
//! reqwest turns each request's URI back into a text and parses it as a URL twice (for its
//! redirect policy, even with redirects off, and for the response), with IDNA, and passes
//! it through its retry and redirect services: about a tenth of the gateway's CPU per call
//! through an HTTP upstream (BENCHMARKS.md). The lane needs none of that: one URL, no
//! redirects (a redirect could move a request somewhere the operator never configured), no
//! retries (a request is not ours to repeat).
//!
//! reqwest also follows the system's proxy settings (`HTTPS_PROXY` and the like). This
//! client does not: an upstream a proxy would carry gets no lane, and rmcp's client, which
//! is reqwest, carries its calls (see [`proxied`] and `HttpLane::leaves_to_rmcp`).

use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};

/// The lane's client: requests carry their whole body.
pub type Wire = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long an idle pooled connection is kept (reqwest's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A client for `http://` and `https://` URLs, HTTP/1.1 on keep-alive connections.
pub fn wire() -> Result<Wire, String> {
    let mut http = HttpConnector::new();
    // Nagle + delayed ACK turned 1 ms calls into 40 ms ones in our measurements.
    http.set_nodelay(true);
    // The https connector takes both schemes.
    http.enforce_http(false);
    // Ours, as everywhere in the gateway (see `upstream::http::use_our_tls_provider`).
    let provider = rustls::crypto::ring::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(provider)
        .map_err(|error| format!("cannot set up TLS: {error}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_timer(TokioTimer::new())
        .build(https))
}

/// Whether the system's proxy settings (the variables reqwest reads) send requests to `url`
/// through a proxy.
pub fn proxied(url: &Uri) -> bool {
    hyper_util::client::proxy::matcher::Matcher::from_system()
        .intercept(url)
        .is_some()
}
