//! The TLS of the gateway's own connections to upstreams (the HTTP lane's, WebSocket's):
//! verified as reqwest verifies under rmcp's client, by the platform's verifier, with the
//! authorities the system trusts (a team's own among them, or those of `SSL_CERT_FILE`), not
//! only the public ones; spoken with our ring provider (see `http::use_our_tls_provider`).

use std::sync::Arc;

use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use rustls::ClientConfig;

/// A client configuration for upstreams, without ALPN: each connector adds what it speaks.
pub fn client_config() -> Result<ClientConfig, String> {
    Ok(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.try_with_platform_verifier())
            .map_err(|error| format!("cannot set up TLS: {error}"))?
            .with_no_client_auth(),
    )
}

/// `inner`'s connections in TLS for `https` URLs, as [`client_config`] says; plain for `http`.
pub fn https_or_http<C>(inner: C) -> Result<HttpsConnector<C>, String> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(client_config()?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(inner))
}
