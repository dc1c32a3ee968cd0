//! The list changes an upstream announced, and how far its catalog entry has caught up with
//! them.
//!
//! A `list_changed` makes the upstream's task list again, which takes a round trip or more.
//! A list served meanwhile waits for that re-list ([`ListChanges::settled`]): behind a
//! balancer, a client told of the change by one replica (whose re-list was quicker) may ask
//! another at once, and would get the lists from before the change and hear of it no more.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::sync::{Notify, watch};

/// How long a list waits for a re-list under way, at most: past that it is served as it is.
pub const SETTLE_MOST: Duration = Duration::from_secs(2);

/// Counts of the changes heard and of those the lists have caught up with.
#[derive(Debug)]
pub struct ListChanges {
    heard: AtomicU64,
    /// Wakes the upstream's task to list again.
    wake: Notify,
    listed: watch::Sender<u64>,
}

impl Default for ListChanges {
    fn default() -> Self {
        Self {
            heard: AtomicU64::new(0),
            wake: Notify::new(),
            listed: watch::Sender::new(0),
        }
    }
}

impl ListChanges {
    /// A change announced on the connection: the upstream's task lists again.
    pub fn heard(&self) {
        self.heard.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
    }

    /// A change the upstream's task heard itself (on a 2026-07-28 subscription): what its
    /// re-list catches up to.
    pub fn heard_here(&self) -> u64 {
        self.heard.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The next change to list again for: what the re-list catches up to. Changes heard
    /// together are one re-list.
    pub async fn next(&self) -> u64 {
        self.wake.notified().await;
        self.heard.load(Ordering::Acquire)
    }

    /// The lists caught up with the first `upto` changes (listed again, or given up on).
    pub fn caught_up(&self, upto: u64) {
        self.listed.send_if_modified(|listed| {
            let later = upto > *listed;
            if later {
                *listed = upto;
            }
            later
        });
    }

    /// Every change heard so far is in lists just fetched whole (a new connection's).
    pub fn all_caught_up(&self) {
        self.caught_up(self.heard.load(Ordering::Acquire));
    }

    /// Whether the lists have caught up with every change heard so far.
    pub fn is_settled(&self) -> bool {
        *self.listed.borrow() >= self.heard.load(Ordering::Acquire)
    }

    /// Once the lists have caught up with every change heard so far, or after `within`.
    pub async fn settled(&self, within: Duration) {
        let heard = self.heard.load(Ordering::Acquire);
        if *self.listed.borrow() >= heard {
            return;
        }
        let mut listed = self.listed.subscribe();
        let _ = tokio::time::timeout(within, listed.wait_for(|listed| *listed >= heard)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_list_waits_for_the_relist_of_a_change_heard_before_it() {
        let changes = Arc::new(ListChanges::default());
        // Nothing heard: no wait.
        tokio::time::timeout(Duration::from_millis(1), changes.settled(SETTLE_MOST))
            .await
            .expect("settled at once");

        changes.heard();
        changes.heard();
        let upto = changes.next().await;
        assert_eq!(upto, 2, "two changes, one re-list");
        let relisting = {
            let changes = changes.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                changes.caught_up(upto);
            })
        };
        let start = tokio::time::Instant::now();
        changes.settled(SETTLE_MOST).await;
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        relisting.await.unwrap();

        // A change heard after the re-list began is not covered by it.
        let upto = changes.heard_here();
        assert_eq!(upto, 3);
        let start = tokio::time::Instant::now();
        changes.settled(SETTLE_MOST).await;
        assert_eq!(start.elapsed(), SETTLE_MOST, "given up on after the most");
        changes.all_caught_up();
        tokio::time::timeout(Duration::from_millis(1), changes.settled(SETTLE_MOST))
            .await
            .expect("caught up");
    }
}
