//! Keeps an upstream running: after it fails (could not start, crashed, connection lost) it
//! is started again after a backoff that doubles with each failure in a row (with ±20 %
//! jitter, so upstreams that failed together do not retry together). An upstream that stayed
//! up for `healthy_after` starts the backoff over. Failures in a row that each came sooner are
//! a crash loop: the next try waits the long pause, and the state says so. An OAuth upstream
//! that needs a sign-in is not failing: it waits for the sign-in, then starts at once.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Phase, Upstream, UpstreamState};
use crate::config::RestartConfig;

/// Runs `upstream` until `stop`, restarting it after each failure.
pub async fn supervise(upstream: Arc<Upstream>, stop: CancellationToken, policy: RestartConfig) {
    let mut backoff = policy.initial_backoff();
    let mut quick_failures = 0u32;
    loop {
        let started = Instant::now();
        upstream.clone().run(stop.clone()).await;
        if stop.is_cancelled() || upstream.config().disabled {
            return;
        }
        if let Some(auth) = upstream.oauth()
            && auth.needed().is_some()
        {
            // Not a failure: it waits, as long as it takes, for a sign-in.
            tokio::select! {
                () = auth.signed_in() => {}
                () = stop.cancelled() => {
                    upstream.publish(UpstreamState::new(Phase::Stopped));
                    return;
                }
            }
            backoff = policy.initial_backoff();
            quick_failures = 0;
            upstream.publish(UpstreamState::new(Phase::Starting));
            continue;
        }
        if started.elapsed() >= policy.healthy_after() {
            backoff = policy.initial_backoff();
            quick_failures = 0;
        }
        quick_failures += 1;
        let reason = upstream
            .last_error()
            .unwrap_or_else(|| "connection ended".to_owned());
        let (wait, phase) = if quick_failures >= policy.crash_loop_failures {
            let pause = policy.crash_loop_pause();
            quick_failures = 0;
            backoff = policy.initial_backoff();
            (
                pause,
                Phase::Failed(format!(
                    "{reason} (crash loop: {} failures in a row; next try in {pause:?})",
                    policy.crash_loop_failures
                )),
            )
        } else {
            let wait = jittered(backoff);
            backoff = (backoff * 2).min(policy.max_backoff());
            (
                wait,
                Phase::Degraded(format!("{reason} (restarting in {wait:.1?})")),
            )
        };
        tracing::warn!(upstream = %upstream.name(), ?wait, "restarting after a failure");
        upstream.publish(UpstreamState::new(phase));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {
                upstream.publish(UpstreamState::new(Phase::Stopped));
                return;
            }
        }
        crate::metrics::metrics().restarted(upstream.name());
        upstream.publish(UpstreamState::new(Phase::Starting));
    }
}

/// `wait` ± 20 %.
fn jittered(wait: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    // 0..=255 → 0.8..=1.2
    let factor = 0.8 + 0.4 * f64::from(byte[0]) / 255.0;
    wait.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(10));
            assert!(
                wait >= Duration::from_secs(8) && wait <= Duration::from_secs(12),
                "{wait:?}"
            );
        }
    }
}
