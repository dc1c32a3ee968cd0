//! How long an upstream keeps an idle connection, learned from the connections it closes.
//!
//! A connection goes back in the lane's pool for the time `wire::keep_for` gives it: the
//! upstream's `Keep-Alive` timeout less a second, or 4 s when it names none. Most servers
//! name none, and some close sooner than that: gunicorn's uvicorn workers after 2 s (its
//! `keepalive`), an operator's `timeout_keep_alive` in uvicorn. A request the lane sends as
//! such a server closes the connection is never read, and its call fails.
//!
//! So the lane watches how each of its connections ends ([`Watch`]). One the upstream closes
//! while it sits idle after an answer says how long the upstream keeps one; two such closes
//! after about the same time make that the lane's limit ([`Learned`]), less a margin for a
//! request's way there (a second, or half the time when that is less). One alone is not
//! taken: an upstream that restarts closes every connection at once, however long each had
//! sat idle. What is learned lasts as long as the lane.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::sync::lock;

/// Closes sooner than this after an answer are not an idle timeout: an upstream that ends
/// each connection after its answer (`Connection: close`), or one that failed.
const SHORTEST: Duration = Duration::from_millis(500);

/// How long the upstreams of one lane keep idle connections, as far as their closes say.
pub struct Learned {
    upstream: String,
    /// What [`Watch`]es count their milliseconds from.
    epoch: Instant,
    /// How long a connection may sit idle, in milliseconds; `u64::MAX` until learned.
    limit_ms: AtomicU64,
    /// How long the last connection the upstream closed had sat idle, if that has not made
    /// the limit yet: the next close like it does.
    unconfirmed: Mutex<Option<Duration>>,
}

/// What one connection is doing, as the pool sees it; read by the task that drives it once
/// the connection ends.
pub struct Watch {
    /// [`BUSY`], [`LET_GO`], or when its last answer came (milliseconds since the epoch, plus
    /// one).
    state: AtomicU64,
    /// How long the pool meant to keep it after that answer, in milliseconds.
    keep_for_ms: AtomicU64,
}

/// Sending a request, or waiting for its answer's head.
const BUSY: u64 = 0;
/// Closed by the pool (idle past its time), not by the upstream.
const LET_GO: u64 = u64::MAX;

impl Watch {
    /// A new connection's: it is about to carry a request.
    pub fn new() -> Self {
        Self {
            state: AtomicU64::new(BUSY),
            keep_for_ms: AtomicU64::new(0),
        }
    }

    /// Taken from the pool for a request.
    pub fn busy(&self) {
        self.state.store(BUSY, Ordering::Release);
    }

    /// Closed by the pool.
    pub fn let_go(&self) {
        self.state.store(LET_GO, Ordering::Release);
    }
}

impl Learned {
    pub fn new(upstream: &str) -> Self {
        Self {
            upstream: upstream.to_owned(),
            epoch: Instant::now(),
            limit_ms: AtomicU64::new(u64::MAX),
            unconfirmed: Mutex::new(None),
        }
    }

    /// How long a connection meant to be kept idle `keep_for` may be, with what the
    /// upstream's closes have said.
    pub fn limit(&self, keep_for: Duration) -> Duration {
        match self.limit_ms.load(Ordering::Relaxed) {
            u64::MAX => keep_for,
            limit => keep_for.min(Duration::from_millis(limit)),
        }
    }

    /// The answer to the request on `watch`'s connection came `at`; the pool keeps the
    /// connection `keep_for` after it.
    pub fn answered(&self, watch: &Watch, at: Instant, keep_for: Duration) {
        watch.keep_for_ms.store(millis(keep_for), Ordering::Relaxed);
        let since = millis(at.saturating_duration_since(self.epoch));
        watch
            .state
            .store(since.saturating_add(1).min(LET_GO - 1), Ordering::Release);
    }

    /// `watch`'s connection has ended without an error: closed by the upstream unless the
    /// pool let it go or it was busy (a request dropped before its answer ends it too).
    pub fn ended(&self, watch: &Watch) {
        let state = watch.state.load(Ordering::Acquire);
        if state == BUSY || state == LET_GO {
            return;
        }
        let answered = self.epoch + Duration::from_millis(state - 1);
        let kept_for = Duration::from_millis(watch.keep_for_ms.load(Ordering::Relaxed));
        self.closed_after(answered.elapsed(), kept_for);
    }

    /// The upstream closed a connection that had sat `idle` since its last answer, which the
    /// pool meant to keep `kept_for`.
    fn closed_after(&self, idle: Duration, kept_for: Duration) {
        if idle < SHORTEST {
            return;
        }
        if margined(idle) >= self.limit(kept_for) {
            // The pool stops using one sooner anyway.
            return;
        }
        let before = lock(&self.unconfirmed).replace(idle);
        let Some(before) = before.filter(|before| before.abs_diff(idle) <= tolerance(idle)) else {
            tracing::debug!(upstream = %self.upstream, ?idle, "the upstream closed an idle connection");
            return;
        };
        let limit = margined(before.min(idle));
        self.limit_ms.fetch_min(millis(limit), Ordering::Relaxed);
        tracing::info!(
            upstream = %self.upstream,
            "the upstream closes connections idle for about {:.1} s, sooner than the gateway \
             kept them: it now sends on one only within {:.1} s of its last answer",
            idle.as_secs_f64(),
            limit.as_secs_f64(),
        );
    }
}

/// How long a connection to an upstream that closes one idle for `idle` may sit idle: a
/// second less, for a request's way there, or half when that is less.
fn margined(idle: Duration) -> Duration {
    idle - (idle / 2).min(Duration::from_secs(1))
}

/// How far apart two closes' idle times may be and still be the same timeout: a server's
/// timer and the way of its close vary by milliseconds, the end of an answer's body (the
/// pool counts from its head) by more.
fn tolerance(idle: Duration) -> Duration {
    (idle / 10).max(Duration::from_millis(100))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(4);

    fn secs(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn two_closes_after_the_same_idle_time_make_the_limit() {
        let learned = Learned::new("up");
        learned.closed_after(secs(2.0), KEEP);
        assert_eq!(learned.limit(KEEP), KEEP, "one close alone is not taken");
        learned.closed_after(secs(2.05), KEEP);
        assert_eq!(
            learned.limit(KEEP),
            secs(1.0),
            "a second less than the shorter"
        );
        assert_eq!(
            learned.limit(secs(0.5)),
            secs(0.5),
            "never longer than meant"
        );
    }

    #[test]
    fn closes_after_different_idle_times_make_no_limit() {
        let learned = Learned::new("up");
        for idle in [0.9, 2.0, 3.1, 1.5] {
            learned.closed_after(secs(idle), KEEP);
        }
        assert_eq!(learned.limit(KEEP), KEEP);
    }

    #[test]
    fn a_short_timeout_keeps_half_of_it() {
        let learned = Learned::new("up");
        learned.closed_after(secs(0.8), KEEP);
        learned.closed_after(secs(0.8), KEEP);
        assert_eq!(learned.limit(KEEP), secs(0.4));
    }

    #[test]
    fn closes_right_after_an_answer_or_past_the_pools_time_teach_nothing() {
        let learned = Learned::new("up");
        for _ in 0..3 {
            // `Connection: close`, or a failing upstream.
            learned.closed_after(secs(0.01), KEEP);
            // Node's 5 s against the pool's 4 s.
            learned.closed_after(secs(5.0), KEEP);
            // Its `Keep-Alive: timeout=30`, kept 29 s, and closed then.
            learned.closed_after(secs(30.0), secs(29.0));
        }
        assert_eq!(learned.limit(KEEP), KEEP);
        assert_eq!(learned.limit(secs(29.0)), secs(29.0));
    }

    #[test]
    fn an_upstream_that_closes_sooner_than_its_keep_alive_header_says_is_caught() {
        let learned = Learned::new("up");
        learned.closed_after(secs(10.0), secs(29.0));
        learned.closed_after(secs(10.0), secs(29.0));
        assert_eq!(learned.limit(secs(29.0)), secs(9.0));
    }

    #[test]
    fn only_a_close_after_an_answer_counts() {
        let mut learned = Learned::new("up");
        // Answers from before it was made.
        learned.epoch = learned.epoch.checked_sub(secs(10.0)).unwrap();
        let watch = Watch::new();
        let long_ago = Instant::now().checked_sub(secs(2.0)).unwrap();
        for state in ["busy", "let go", "idle"] {
            learned.answered(&watch, long_ago, KEEP);
            match state {
                "busy" => watch.busy(),
                "let go" => watch.let_go(),
                _ => {}
            }
            learned.ended(&watch);
            learned.ended(&watch);
            let limit = learned.limit(KEEP);
            if state == "idle" {
                assert!(limit > secs(0.9) && limit < secs(1.2), "{limit:?}");
            } else {
                assert_eq!(limit, KEEP, "{state}");
            }
        }
    }
}
