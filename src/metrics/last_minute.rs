//! The calls of the last minute, for the web console's overview: how many, how many failed,
//! and how long they took (the median, p95 and p99). Sixty one-second slots, each with its
//! counters and a histogram of durations, written by each call with a few atomic additions
//! and read by summing the slots still in the minute.
//!
//! The histogram has four buckets to an octave, so a percentile is told within 19 % (the
//! bucket's upper bound is given): plenty for an operator's eye, in a fixed 60 × 110 × 8
//! bytes however many calls there are.

use std::{
    sync::atomic::{AtomicU64, Ordering::Relaxed},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

const SLOTS: usize = 60;

/// Buckets to an octave of durations.
const PER_OCTAVE: f64 = 4.0;

/// Bucket 0 holds calls under a microsecond; bucket `i` those of up to 2^(i/4) µs. The last
/// one also holds everything longer (2^(109/4) µs is about 2.6 minutes).
const BUCKETS: usize = 110;

struct Slot {
    /// The second (since the Unix epoch) the counts are of.
    second: AtomicU64,
    calls: AtomicU64,
    failed: AtomicU64,
    durations: [AtomicU64; BUCKETS],
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            second: AtomicU64::default(),
            calls: AtomicU64::default(),
            failed: AtomicU64::default(),
            durations: std::array::from_fn(|_| AtomicU64::default()),
        }
    }
}

pub(super) struct LastMinute {
    slots: Box<[Slot; SLOTS]>,
}

/// What the last minute's calls came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinuteOfCalls {
    pub calls: u64,
    pub failed: u64,
    /// How long calls took, when there was one.
    pub latency: Option<Latency>,
}

/// Percentiles of the calls' durations, each the upper bound of its histogram bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
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

/// The bucket a call of `took` falls in.
fn bucket_of(took: Duration) -> usize {
    let micros = took.as_micros();
    if micros == 0 {
        return 0;
    }
    let above = ((micros as f64).log2() * PER_OCTAVE).ceil() as usize;
    above.clamp(1, BUCKETS - 1)
}

/// The longest duration bucket `index` holds.
fn upper_bound(index: usize) -> Duration {
    if index == 0 {
        return Duration::from_micros(1);
    }
    Duration::from_secs_f64(2f64.powf(index as f64 / PER_OCTAVE) / 1e6)
}

impl LastMinute {
    pub(super) fn new() -> Self {
        Self {
            slots: Box::new(std::array::from_fn(|_| Slot::default())),
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
            for bucket in &slot.durations {
                bucket.store(0, Relaxed);
            }
        }
        slot.calls.fetch_add(1, Relaxed);
        if failed {
            slot.failed.fetch_add(1, Relaxed);
        }
        slot.durations[bucket_of(took)].fetch_add(1, Relaxed);
    }

    pub(super) fn read(&self) -> MinuteOfCalls {
        self.read_at(now_second())
    }

    fn read_at(&self, now: u64) -> MinuteOfCalls {
        let (mut calls, mut failed) = (0, 0);
        let mut durations = [0u64; BUCKETS];
        for slot in self.slots.iter() {
            let second = slot.second.load(Relaxed);
            if second + (SLOTS as u64) > now && second <= now {
                calls += slot.calls.load(Relaxed);
                failed += slot.failed.load(Relaxed);
                for (sum, bucket) in durations.iter_mut().zip(&slot.durations) {
                    *sum += bucket.load(Relaxed);
                }
            }
        }
        let counted: u64 = durations.iter().sum();
        let latency = (counted > 0).then(|| Latency {
            p50: percentile(&durations, counted, 0.50),
            p95: percentile(&durations, counted, 0.95),
            p99: percentile(&durations, counted, 0.99),
        });
        MinuteOfCalls {
            calls,
            failed,
            latency,
        }
    }
}

/// The upper bound of the bucket the `share`-th of `counted` calls falls in.
fn percentile(durations: &[u64; BUCKETS], counted: u64, share: f64) -> Duration {
    let rank = ((counted as f64 * share).ceil() as u64).max(1);
    let mut seen = 0;
    for (index, count) in durations.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return upper_bound(index);
        }
    }
    upper_bound(BUCKETS - 1)
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
        assert_eq!((read.calls, read.failed), (3, 1));
        // A minute on, the first second has gone; its slot starts over when reused.
        assert_eq!(minute.read_at(1_060).calls, 2);
        minute.record_at(1_060, false, Duration::from_millis(1));
        assert_eq!(minute.read_at(1_060).calls, 3);
        assert_eq!(minute.read_at(2_000).latency, None);
    }

    /// Whether `told` is `truth` as a bucket's upper bound tells it: not below, and within
    /// a quarter octave.
    fn within_a_bucket(told: Duration, truth: Duration) -> bool {
        told >= truth && told.as_secs_f64() <= truth.as_secs_f64() * 2f64.powf(0.25) * 1.000_001
    }

    #[test]
    fn percentiles_are_told_within_a_bucket() {
        let minute = LastMinute::new();
        // 1 ms to 100 ms, one call each: p50 is 50 ms, p95 95 ms, p99 99 ms.
        for millis in 1..=100 {
            minute.record_at(
                5_000 + millis % 60,
                millis == 7,
                Duration::from_millis(millis),
            );
        }
        let latency = minute.read_at(5_059).latency.unwrap();
        for (told, truth) in [(latency.p50, 50), (latency.p95, 95), (latency.p99, 99)] {
            assert!(
                within_a_bucket(told, Duration::from_millis(truth)),
                "{told:?} for {truth} ms"
            );
        }
    }

    #[test]
    fn the_extremes_land_in_the_first_and_last_buckets() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_nanos(900)), 0);
        assert_eq!(bucket_of(Duration::from_micros(1)), 1);
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        for micros in [1u64, 2, 3, 17, 1_000, 123_456, 9_999_999] {
            let took = Duration::from_micros(micros);
            assert!(
                within_a_bucket(upper_bound(bucket_of(took)), took),
                "{micros} µs"
            );
        }
    }
}
