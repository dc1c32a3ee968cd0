//! Serving an rmcp server handler over streamable HTTP on loopback, for the example servers
//! that tests and benchmarks start: it prints `listening on http://127.0.0.1:PORT/mcp` once it
//! accepts connections (port 0 picks a free one).

use std::{net::SocketAddr, sync::Arc};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use rmcp::{
    ServerHandler,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};

/// Serves handlers made by `make` on `port` until the process ends. `config` gets the bound
/// port (for settings such as the allowed origins).
pub async fn serve<H>(
    port: u16,
    config: impl FnOnce(u16) -> StreamableHttpServerConfig,
    make: impl Fn() -> H + Send + Sync + 'static,
) -> std::io::Result<()>
where
    H: ServerHandler,
{
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let bound = listener.local_addr()?;
    let service = TowerToHyperService::new(StreamableHttpService::new(
        move || Ok(make()),
        Arc::new(LocalSessionManager::default()),
        config(bound.port()),
    ));
    println!("listening on http://{bound}/mcp");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
