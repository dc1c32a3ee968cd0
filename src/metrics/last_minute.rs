//! The calls of the last minute, for the web console's overview: how many, how many failed,
//! and how long they took on average. Sixty one-second slots of counters, written by each
//! call with a few atomic additions and read by summing the slots still in the minute.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

const SLOTS: usize = 60;

#[derive(Default)]
struct Slot {
    /// The second (since the Unix epoch) the counts are of.
    second: AtomicU64,
    calls: AtomicU64,
    failed: AtomicU64,
    micros: AtomicU64,
}

pub(super) struct LastMinute {
    slots: [Slot; SLOTS],
}

/// What the last minute's calls came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteOfCalls {
    pub calls: u64,
    pub failed: u64,
    /// The mean duration, when there was a call.
    pub mean: Option<Duration>,
}

impl MinuteOfCalls {
    pub fn per_second(&self) -> f64 {
        self.calls as f64 / SLOTS as f64
    }

    /// The share of calls that did not succeed, 0 to 1.
    pub fn failure_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failed as f64 / self.calls as f64
        }
    }
}

fn now_second() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl LastMinute {
    pub(super) fn new() -> Self {
        Self {
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }

    pub(super) fn record(&self, failed: bool, took: Duration) {
        self.record_at(now_second(), failed, took);
    }

    fn record_at(&self, second: u64, failed: bool, took: Duration) {
        let slot = &self.slots[(second % SLOTS as u64) as usize];
        let seen = slot.second.load(Relaxed);
        // The first call of a new second starts its slot over. Two calls that race here may
        // lose one count between them: a figure for the eye, not for billing.
        if seen != second
            && slot
                .second
                .compare_exchange(seen, second, Relaxed, Relaxed)
                .is_ok()
        {
            slot.calls.store(0, Relaxed);
            slot.failed.store(0, Relaxed);
            slot.micros.store(0, Relaxed);
        }
        slot.calls.fetch_add(1, Relaxed);
        if failed {
            slot.failed.fetch_add(1, Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        slot.micros.fetch_add(micros, Relaxed);
    }

    pub(super) fn read(&self) -> MinuteOfCalls {
        self.read_at(now_second())
    }

    fn read_at(&self, now: u64) -> MinuteOfCalls {
        let (mut calls, mut failed, mut micros) = (0, 0, 0u64);
        for slot in &self.slots {
            let second = slot.second.load(Relaxed);
            if second + (SLOTS as u64) > now && second <= now {
                calls += slot.calls.load(Relaxed);
                failed += slot.failed.load(Relaxed);
                micros = micros.saturating_add(slot.micros.load(Relaxed));
            }
        }
        MinuteOfCalls {
            calls,
            failed,
            mean: (calls > 0).then(|| Duration::from_micros(micros / calls)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_minute_counts() {
        let minute = LastMinute::new();
        minute.record_at(1_000, false, Duration::from_millis(2));
        minute.record_at(1_030, true, Duration::from_millis(4));
        minute.record_at(1_059, false, Duration::from_millis(6));
        let read = minute.read_at(1_059);
        assert_eq!(
            read,
            MinuteOfCalls {
                calls: 3,
                failed: 1,
                mean: Some(Duration::from_millis(4))
            }
        );
        // A minute on, the first second has gone; its slot starts over when reused.
        assert_eq!(minute.read_at(1_060).calls, 2);
        minute.record_at(1_060, false, Duration::from_millis(1));
        assert_eq!(minute.read_at(1_060).calls, 3);
        assert_eq!(minute.read_at(2_000).mean, None);
    }
}
