//! What we have sent a client and it has not taken yet, kept bounded.
//!
//! rmcp hands each outgoing message to the transport as a future of its own and keeps every
//! one of them until it completes, so a client that stops reading would make the gateway
//! hold every response, progress update and log message meant for it. [`Outbound`] counts
//! the bytes of the writes not yet finished and gives up on the client when that count
//! passes `limits.max_outbound_bytes`, or when one write has waited
//! `timeouts.client_write_stall_secs`: its transport then ends the session, which drops the
//! connection and everything queued on it.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::config::Config;

/// The outbound queue of one client connection.
#[derive(Debug)]
pub struct Outbound {
    pending: AtomicUsize,
    max_bytes: usize,
    stall: Duration,
    given_up: CancellationToken,
}

impl Outbound {
    pub fn new(max_bytes: usize, stall: Duration) -> Self {
        Self {
            pending: AtomicUsize::new(0),
            max_bytes,
            stall,
            given_up: CancellationToken::new(),
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self::new(
            config.limits.max_outbound_bytes,
            config.timeouts.client_write_stall(),
        )
    }

    /// Runs `write`, which sends `bytes` bytes, within the queue's bounds. A write that
    /// would overfill the queue is not started; one that stalls is abandoned. Either way
    /// the client is given up on (see [`Outbound::given_up`]).
    pub async fn write<F>(&self, bytes: usize, write: F) -> std::io::Result<()>
    where
        F: Future<Output = std::io::Result<()>>,
    {
        if self.given_up.is_cancelled() {
            return Err(std::io::Error::other("the client was disconnected"));
        }
        let _taken = self.count(bytes)?;
        tokio::select! {
            written = tokio::time::timeout(self.stall, write) => match written {
                Ok(written) => written,
                Err(_) => Err(self.give_up(format!(
                    "the client took nothing for {:?}",
                    self.stall
                ))),
            },
            // The writes queued behind a stalled one end with it, not one stall each.
            () = self.given_up.cancelled() => {
                Err(std::io::Error::other("the client was disconnected"))
            }
        }
    }

    /// Whether the client has been given up on (a final flush would only block).
    pub fn is_given_up(&self) -> bool {
        self.given_up.is_cancelled()
    }

    /// Completes once the client has been given up on; the transport's `receive` ends
    /// the session on it.
    pub fn given_up(&self) -> WaitForCancellationFuture<'_> {
        self.given_up.cancelled()
    }

    /// Writes each of `messages` in order, within the queue's bounds; `write` makes the write
    /// of one. While one is written, the next are taken off the channel and counted against
    /// the bound: a client that does not read is given up on when what waits for it passes
    /// the bound, as with rmcp's own sends (each a write of its own). Returns when the channel
    /// is closed and everything taken off it is written, or when the client is given up on.
    pub async fn write_in_order<W, F>(&self, mut messages: mpsc::Receiver<String>, write: W)
    where
        W: Fn(String) -> F,
        F: Future<Output = std::io::Result<()>>,
    {
        let mut waiting: VecDeque<(String, Taken<'_>)> = VecDeque::new();
        let mut closed = false;
        loop {
            let message = match waiting.pop_front() {
                // Its write counts it from here.
                Some((message, _counted)) => message,
                None if closed => return,
                None => match messages.recv().await {
                    Some(message) => message,
                    None => return,
                },
            };
            let mut writing = std::pin::pin!(self.write(message.len(), write(message)));
            loop {
                tokio::select! {
                    biased;
                    written = &mut writing => {
                        if written.is_err() {
                            return;
                        }
                        break;
                    }
                    next = messages.recv(), if !closed => match next {
                        Some(next) => match self.count(next.len()) {
                            Ok(counted) => waiting.push_back((next, counted)),
                            Err(_) => return,
                        },
                        None => closed = true,
                    },
                }
            }
        }
    }

    /// Counts `bytes` waiting for the client until the returned guard drops; an error, and
    /// the client given up on, if they would overfill the queue.
    fn count(&self, bytes: usize) -> std::io::Result<Taken<'_>> {
        let before = self.pending.fetch_add(bytes, Ordering::Relaxed);
        let counted = Taken(&self.pending, bytes);
        // An empty queue takes a message of any size, so one big result always fits.
        if before > 0 && before + bytes > self.max_bytes {
            return Err(self.give_up(format!(
                "the client is not reading: {before} bytes are still waiting for it"
            )));
        }
        Ok(counted)
    }

    fn give_up(&self, why: String) -> std::io::Error {
        if !self.given_up.is_cancelled() {
            tracing::warn!("{why}; disconnecting it");
            self.given_up.cancel();
        }
        std::io::Error::new(std::io::ErrorKind::TimedOut, why)
    }
}

/// Takes a write's bytes off the count when it ends, however it ends.
struct Taken<'a>(&'a AtomicUsize, usize);

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_that_would_overfill_a_busy_queue_gives_up_on_the_client() {
        let outbound = std::sync::Arc::new(Outbound::new(100, Duration::from_secs(60)));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let busy = outbound.clone();
        // A big first write always starts, even past the bound.
        let first = tokio::spawn(async move {
            busy.write(500, async {
                let _ = released.await;
                Ok(())
            })
            .await
        });
        tokio::task::yield_now().await;
        let second = outbound.write(10, async { Ok(()) }).await;
        assert!(second.is_err());
        outbound.given_up().await;
        // The write in progress is abandoned with the client.
        assert!(first.await.unwrap().is_err());
        drop(release);
        assert!(outbound.write(1, async { Ok(()) }).await.is_err());
    }

    #[tokio::test]
    async fn a_write_that_stalls_gives_up_on_the_client() {
        let outbound = Outbound::new(100, Duration::from_millis(50));
        let stalled = outbound.write(10, std::future::pending()).await;
        assert_eq!(stalled.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        outbound.given_up().await;
    }

    #[tokio::test]
    async fn writes_within_bounds_go_through() {
        let outbound = Outbound::new(100, Duration::from_secs(5));
        for _ in 0..10 {
            outbound.write(90, async { Ok(()) }).await.unwrap();
        }
        assert_eq!(outbound.pending.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn queued_messages_are_written_in_order_and_count_while_they_wait() {
        let outbound = Outbound::new(1000, Duration::from_secs(60));
        let (queue, messages) = mpsc::channel(8);
        for n in 0..5 {
            queue.send(format!("m{n}")).await.unwrap();
        }
        drop(queue);
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = written.clone();
        outbound
            .write_in_order(messages, move |message| {
                let written = into.clone();
                async move {
                    // A later write started meanwhile must still wait its turn.
                    tokio::task::yield_now().await;
                    written.lock().unwrap().push(message);
                    Ok(())
                }
            })
            .await;
        assert_eq!(*written.lock().unwrap(), ["m0", "m1", "m2", "m3", "m4"]);

        // A client that takes nothing: the second message waiting passes the bound.
        let outbound = Outbound::new(100, Duration::from_secs(60));
        let (queue, messages) = mpsc::channel(8);
        queue.send("x".repeat(60)).await.unwrap();
        queue.send("y".repeat(60)).await.unwrap();
        drop(queue);
        outbound
            .write_in_order(messages, |_| std::future::pending())
            .await;
        assert!(outbound.is_given_up());
    }
}
