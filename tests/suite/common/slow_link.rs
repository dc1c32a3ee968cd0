//! A slow network between the gateway and an upstream: a TCP relay that holds every byte
//! bound for the upstream for a fixed time (answers come back at once), so that what the
//! gateway sends the upstream arrives late while a test reaches the upstream directly. Held
//! selectively ([`SlowLink::holding`]), it reorders what the gateway sends on different
//! connections, as a congested network can; it records what reached the upstream, in order.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

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
    traffic: Arc<Mutex<Traffic>>,
}

/// What reached the upstream.
#[derive(Default)]
struct Traffic {
    /// Each read of the gateway's as it was delivered, as text, with its connection's number.
    delivered: Vec<(usize, String)>,
    /// The connections that closed, by number.
    closed: HashSet<usize>,
}

/// Which of the gateway's bytes are held: all of them, or the reads holding a text.
#[derive(Clone, Copy)]
enum Hold {
    All,
    Holding(&'static str),
}

impl SlowLink {
    /// Relays the connections made to [`Self::port`] to `target` (`host:port`), each byte
    /// toward `target` `delay` after it was sent.
    pub fn start(target: &str, delay: Duration) -> Self {
        Self::start_with(target, delay, Hold::All)
    }

    /// Relays as [`Self::start`] does, but holds only the reads (as the gateway's writes
    /// arrive) that hold `text`, and what follows them on their connection; other
    /// connections' bytes go at once.
    pub fn holding(target: &str, text: &'static str, delay: Duration) -> Self {
        Self::start_with(target, delay, Hold::Holding(text))
    }

    /// What reached the upstream so far, in the order it did.
    pub fn delivered(&self) -> Vec<String> {
        let traffic = self.traffic.lock().unwrap();
        traffic
            .delivered
            .iter()
            .map(|(_, text)| text.clone())
            .collect()
    }

    /// How many of the connections that carried `text` to the upstream are still open.
    pub fn open_carrying(&self, text: &str) -> usize {
        let traffic = self.traffic.lock().unwrap();
        let carrying: HashSet<usize> = traffic
            .delivered
            .iter()
            .filter(|(_, delivered)| delivered.contains(text))
            .map(|(connection, _)| *connection)
            .collect();
        carrying.difference(&traffic.closed).count()
    }

    fn start_with(target: &str, delay: Duration, hold: Hold) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("relay address").port();
        let target = target.to_owned();
        let (stop, stopped) = oneshot::channel();
        let traffic = Arc::<Mutex<Traffic>>::default();
        let recording = traffic.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the relay's runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("the relay's listener");
                let accepting = async {
                    let mut connections = 0..;
                    while let Ok((client, _)) = listener.accept().await {
                        let target = target.clone();
                        let traffic = recording.clone();
                        let number = connections.next().unwrap_or_default();
                        tokio::spawn(async move {
                            if let Ok(upstream) = TcpStream::connect(&target).await {
                                let delivered = |text| {
                                    traffic.lock().unwrap().delivered.push((number, text));
                                };
                                relay(client, upstream, delay, hold, delivered).await;
                            }
                            traffic.lock().unwrap().closed.insert(number);
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
            traffic,
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

/// Copies `upstream`'s bytes to `client` as they come, and `client`'s to `upstream` in order,
/// those `hold` names `delay` late (each, as text, to `delivered` once written), until
/// either side closes.
async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    delay: Duration,
    hold: Hold,
    delivered: impl Fn(String),
) {
    let (mut client_reads, mut client_writes) = client.into_split();
    let (mut upstream_reads, mut upstream_writes) = upstream.into_split();
    let (held, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reading = async move {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = client_reads.read(&mut buffer).await {
            let bytes = buffer[..read].to_vec();
            let held_back = match hold {
                Hold::All => true,
                Hold::Holding(text) => String::from_utf8_lossy(&bytes).contains(text),
            };
            let when = Instant::now() + if held_back { delay } else { Duration::ZERO };
            let _ = held.send((when, bytes));
        }
    };
    let delivering = async move {
        while let Some((when, bytes)) = due.recv().await {
            tokio::time::sleep_until(when).await;
            if upstream_writes.write_all(&bytes).await.is_err() {
                return;
            }
            delivered(String::from_utf8_lossy(&bytes).into_owned());
        }
    };
    let answering = tokio::io::copy(&mut upstream_reads, &mut client_writes);
    tokio::select! {
        () = async { tokio::join!(reading, delivering); } => {}
        _ = answering => {}
    }
}
