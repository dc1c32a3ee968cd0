//! One timer for many short waits.
//!
//! Setting a tokio timer that falls due before every other one wakes the runtime's driver
//! (a write to its eventfd, then a turn of the event loop for nothing). A wait armed per
//! request is such a timer on a quiet gateway: a wake-up per request. [`Ticks`] keeps one
//! timer running while anybody waits, whatever their number, and none while nobody does;
//! a wait costs a count and a place in a queue.
//!
//! The price is precision: a wait of `n` ticks ends between `n - 1` and `n` periods after
//! it starts, which suits waits that only bound how long something may take.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{Notify, watch};

/// A clock that ticks every period while somebody waits for it.
pub struct Ticks {
    shared: Arc<Shared>,
    /// Whether the task that ticks has been started (at the first wait, on its runtime).
    started: AtomicBool,
}

struct Shared {
    period: Duration,
    /// The number of ticks so far.
    count: watch::Sender<u64>,
    waiting: AtomicUsize,
    /// Wakes the ticking task when the first waiter comes, or when the clock is dropped.
    wanted: Notify,
    dropped: AtomicBool,
}

impl Ticks {
    pub fn every(period: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                period,
                count: watch::Sender::new(0),
                waiting: AtomicUsize::new(0),
                wanted: Notify::new(),
                dropped: AtomicBool::new(false),
            }),
            started: AtomicBool::new(false),
        }
    }

    /// Returns after `ticks` ticks: between `ticks - 1` and `ticks` periods from now.
    pub async fn wait(&self, ticks: u64) {
        let _waiting = Waiting::enter(&self.shared);
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(tick(self.shared.clone()));
        }
        let mut count = self.shared.count.subscribe();
        for _ in 0..ticks {
            // The sender lives in `shared`, which this clock holds: it is never closed here.
            let _ = count.changed().await;
        }
    }
}

impl Drop for Ticks {
    fn drop(&mut self) {
        self.shared.dropped.store(true, Ordering::Release);
        self.shared.wanted.notify_one();
    }
}

/// One waiter, counted while it waits.
struct Waiting<'a>(&'a Shared);

impl<'a> Waiting<'a> {
    fn enter(shared: &'a Shared) -> Self {
        if shared.waiting.fetch_add(1, Ordering::AcqRel) == 0 {
            // Stored as a permit if the task is not waiting for it yet: no wake-up is lost.
            shared.wanted.notify_one();
        }
        Self(shared)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Ticks every period while anybody waits, until the clock is dropped.
async fn tick(shared: Arc<Shared>) {
    loop {
        while shared.waiting.load(Ordering::Acquire) == 0 {
            if shared.dropped.load(Ordering::Acquire) {
                return;
            }
            shared.wanted.notified().await;
        }
        tokio::time::sleep(shared.period).await;
        if shared.dropped.load(Ordering::Acquire) {
            return;
        }
        shared.count.send_modify(|count| *count += 1);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;

    const PERIOD: Duration = Duration::from_millis(50);

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_within_its_last_period() {
        let ticks = Ticks::every(PERIOD);
        for _ in 0..3 {
            let started = Instant::now();
            ticks.wait(2).await;
            let waited = started.elapsed();
            assert!(waited > PERIOD && waited <= 2 * PERIOD, "waited {waited:?}");
            // A pause between waits, so the next one starts anywhere within a period.
            tokio::time::sleep(PERIOD / 3).await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn many_waiters_share_the_ticks_which_stop_when_nobody_waits() {
        let ticks = Arc::new(Ticks::every(PERIOD));
        let started = Instant::now();
        let waits: Vec<_> = (0..100)
            .map(|_| {
                let ticks = ticks.clone();
                tokio::spawn(async move { ticks.wait(2).await })
            })
            .collect();
        for wait in waits {
            wait.await.unwrap();
        }
        assert!(started.elapsed() <= 2 * PERIOD);
        assert_eq!(*ticks.shared.count.borrow(), 2, "one clock for all");
        // Nobody waits: the clock stops ticking.
        tokio::time::sleep(10 * PERIOD).await;
        assert!(*ticks.shared.count.borrow() <= 3);
        // And starts again for the next waiter.
        ticks.wait(1).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_given_up_is_no_longer_counted() {
        let ticks = Ticks::every(PERIOD);
        let given_up = tokio::time::timeout(PERIOD / 10, ticks.wait(2)).await;
        assert!(given_up.is_err());
        assert_eq!(ticks.shared.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticking_task_ends_with_its_clock() {
        let ticks = Ticks::every(PERIOD);
        ticks.wait(1).await;
        let shared = Arc::downgrade(&ticks.shared);
        drop(ticks);
        tokio::time::sleep(2 * PERIOD).await;
        assert!(shared.upgrade().is_none(), "the task let go of the clock");
    }
}
