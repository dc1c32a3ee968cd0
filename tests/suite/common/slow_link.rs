//! A slow network between the gateway and an upstream: a TCP relay that holds every byte
//! bound for the upstream for a fixed time (answers come back at once), so that what the
//! gateway sends the upstream arrives late while a test reaches the upstream directly.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
    time::Instant,
};

/// The relay, on a thread of its own (it must run while a test blocks on something else,
/// such as [`super::process::ServeProcess::start`]); stopped on drop.
pub struct SlowLink {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
}

impl SlowLink {
    /// Relays the connections made to [`Self::port`] to `target` (`host:port`), each byte
    /// toward `target` `delay` after it was sent.
    pub fn start(target: &str, delay: Duration) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("relay address").port();
        let target = target.to_owned();
        let (stop, stopped) = oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the relay's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("the relay's listener");
                let accepting = async {
                    while let Ok((client, _)) = listener.accept().await {
                        let target = target.clone();
                        tokio::spawn(async move {
                            if let Ok(upstream) = TcpStream::connect(&target).await {
                                relay(client, upstream, delay).await;
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = stopped => {}
                    () = accepting => {}
                }
            });
        });
        Self {
            port,
            stop: Some(stop),
        }
    }

    /// The port to name instead of the upstream's.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Copies `upstream`'s bytes to `client` as they come, and `client`'s to `upstream` `delay`
/// late, in order, until either side closes.
async fn relay(client: TcpStream, upstream: TcpStream, delay: Duration) {
    let (mut client_reads, mut client_writes) = client.into_split();
    let (mut upstream_reads, mut upstream_writes) = upstream.into_split();
    let (held, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reading = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = client_reads.read(&mut buffer).await {
            let _ = held.send((Instant::now() + delay, buffer[..read].to_vec()));
        }
    };
    let delivering = async move {
        while let Some((when, bytes)) = due.recv().await {
            tokio::time::sleep_until(when).await;
            if upstream_writes.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let answering = tokio::io::copy(&mut upstream_reads, &mut client_writes);
    tokio::select! {
        () = async { tokio::join!(reading, delivering); } => {}
        _ = answering => {}
    }
}
