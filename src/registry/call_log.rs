//! The call log's writer: calls are queued by the call path (a non-blocking send, never a
//! query) and written in batches by one task, in one transaction per batch. On shutdown the
//! writer drains the queue before it ends, so a graceful stop loses no call.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CallRecord, Registry};
use crate::metrics::metrics;

/// Calls waiting to be written. Past this the newest are dropped (and counted): the log must
/// never slow calls down or grow without bound.
const QUEUE: usize = 8192;
/// The most calls written in one transaction.
const BATCH: usize = 512;
/// How long a call may wait in the queue before its batch is written.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// Where the call path puts calls.
#[derive(Clone)]
pub struct CallLog {
    sender: mpsc::Sender<CallRecord>,
    dropped: Arc<AtomicU64>,
}

impl CallLog {
    /// A log writing to `registry` until `shutdown`, then flushing. Await the returned task
    /// before exiting.
    pub fn start(
        registry: Registry,
        shutdown: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let log = Self {
            sender,
            dropped: Arc::default(),
        };
        (log, write(registry, receiver, shutdown))
    }

    /// Queues a call; never waits.
    pub fn record(&self, call: CallRecord) {
        if self.sender.try_send(call).is_err() {
            metrics().calls_not_recorded.inc();
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "the call log cannot keep up; calls were not recorded"
                );
            }
        }
    }
}

async fn write(
    registry: Registry,
    mut receiver: mpsc::Receiver<CallRecord>,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let open = tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => received > 0,
            () = shutdown.cancelled() => false,
        };
        if open && batch.len() < BATCH {
            // Let a burst gather into one transaction. A full batch is written at once:
            // calls that come faster than a batch per wait must not wait their turn (at one
            // batch per wait, the log kept 2,048 calls a second and dropped the rest).
            tokio::time::sleep(FLUSH_EVERY).await;
            while batch.len() < BATCH
                && let Ok(call) = receiver.try_recv()
            {
                batch.push(call);
            }
        } else if !open {
            receiver.close();
            while let Ok(call) = receiver.try_recv() {
                batch.push(call);
            }
        }
        if !batch.is_empty() {
            write_batch(&registry, std::mem::take(&mut batch), open).await;
        }
        if !open {
            return;
        }
    }
}

/// Writes `calls`, retrying while the database is busy (locked by another process past the
/// busy timeout): the calls wait here, the call path does not. On the final flush it tries
/// once more only.
async fn write_batch(registry: &Registry, calls: Vec<CallRecord>, running: bool) {
    let count = calls.len();
    let tries = if running { WRITE_TRIES } else { 2 };
    for attempt in 1..=tries {
        match registry.insert_calls(calls.clone()).await {
            Ok(()) => return,
            Err(error) if attempt < tries => {
                tracing::warn!(%error, count, attempt, "cannot write calls to the call log yet; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
            Err(error) => {
                metrics().calls_not_recorded.inc_by(count as u64);
                tracing::error!(%error, count, "cannot write calls to the call log; they are lost");
            }
        }
    }
}

/// How often a batch is tried before it is given up.
const WRITE_TRIES: u32 = 10;
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How often old calls are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Calls deleted per statement.
const PRUNE_BATCH: i64 = 10_000;

/// Deletes the calls older than `keep` from `registry` at start and every hour, until
/// `shutdown` (`database.keep_calls_days`). Every replica on a database may run it: a
/// deletion that finds nothing costs one indexed read.
pub async fn prune(registry: Registry, keep: Duration, shutdown: CancellationToken) {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    loop {
        let before = super::now_ms().saturating_sub(keep_ms);
        match registry.forget_calls_before(before, PRUNE_BATCH).await {
            Ok(0) => {}
            Ok(forgotten) => {
                tracing::info!(forgotten, "calls past database.keep_calls_days deleted")
            }
            Err(error) => {
                tracing::warn!(%error, "cannot delete old calls; trying again in an hour")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseLocation;

    fn call(n: usize) -> CallRecord {
        CallRecord {
            id: 0,
            at: i64::try_from(n).unwrap(),
            client: None,
            principal: None,
            upstream: Some("echo".into()),
            tool: "echo__echo".into(),
            duration_us: 1,
            outcome: "ok".into(),
            error: None,
        }
    }

    /// A call log on an SQLite file in `dir`: the registry, the log, what stops its writer,
    /// and the writer, not yet started.
    async fn log_in(
        dir: &tempfile::TempDir,
    ) -> (
        Registry,
        CallLog,
        CancellationToken,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let place = DatabaseLocation::Sqlite(dir.path().join("calls.db"));
        let registry = Registry::open(&place, "a key for this test").await.unwrap();
        let shutdown = CancellationToken::new();
        let (log, writer) = CallLog::start(registry.clone(), shutdown.clone());
        (registry, log, shutdown, writer)
    }

    /// Waits until the history holds `calls` calls. Yielding, not sleeping: the paused clock
    /// moves only for the writer's own waits.
    async fn written(registry: &Registry, calls: usize) {
        while registry.call_counts().await.unwrap().0 < i64::try_from(calls).unwrap() {
            tokio::task::yield_now().await;
        }
    }

    /// Calls queued faster than a batch per wait are written batch after batch, with no wait
    /// between full ones, and none is dropped. Time is paused: it moves only when the writer
    /// waits, so the elapsed time counts its waits, whatever this machine's speed.
    #[tokio::test(start_paused = true)]
    async fn full_batches_are_written_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, log, shutdown, writer) = log_in(&dir).await;
        let calls = 3 * BATCH;
        for n in 0..calls {
            log.record(call(n));
        }
        let start = tokio::time::Instant::now();
        let writer = tokio::spawn(writer);
        written(&registry, calls).await;
        assert!(
            start.elapsed() < FLUSH_EVERY,
            "{calls} calls took {:?} of waits to be written",
            start.elapsed()
        );
        assert_eq!(log.dropped.load(Ordering::Relaxed), 0);
        shutdown.cancel();
        writer.await.unwrap();
    }

    /// A call that comes alone waits for others to share its transaction, and is written
    /// after that wait.
    #[tokio::test(start_paused = true)]
    async fn a_lone_call_is_written_after_one_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (registry, log, shutdown, writer) = log_in(&dir).await;
        let writer = tokio::spawn(writer);
        let start = tokio::time::Instant::now();
        log.record(call(1));
        written(&registry, 1).await;
        assert!(start.elapsed() >= FLUSH_EVERY);
        assert!(start.elapsed() < 2 * FLUSH_EVERY);
        shutdown.cancel();
        writer.await.unwrap();
    }
}
