//! Start-up progress for a person watching a terminal: with many upstreams (some of them
//! downloading packages on first start), one line as each settles and a summary at the end.
//! Shown only when stderr is a terminal: a client launching `mcps stdio`, a service manager
//! or a log file gets the log lines alone.

use std::{
    collections::HashSet,
    io::{IsTerminal, Write},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::{gateway::Gateway, upstream::Phase};

/// How often the upstreams' states are looked at while they start.
const POLL: Duration = Duration::from_millis(100);

/// How often the ones still starting are named, so a first start that downloads a package
/// for a minute does not look hung.
const STILL_STARTING_EVERY: Duration = Duration::from_secs(10);

/// Whether progress is worth showing: stderr is a terminal someone reads.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Writes a line per upstream as it settles, until every one has.
pub async fn show_startup(gateway: Arc<Gateway>) {
    let started = Instant::now();
    let count = gateway.upstreams().len();
    if count == 0 {
        return;
    }
    let mut err = std::io::stderr();
    let _ = writeln!(err, "Starting {count} upstreams…");
    let mut settled: HashSet<String> = HashSet::new();
    let (mut ready, mut failed) = (0, 0);
    let mut named_waiting_at = started;
    loop {
        // Read before the pass: once nothing is starting, this pass sees every one settled.
        let finished = gateway.is_started();
        let catalog = gateway.catalog();
        let upstreams = gateway.upstreams();
        for upstream in upstreams.iter() {
            if settled.contains(upstream.name()) {
                continue;
            }
            let line = match &upstream.state().phase {
                Phase::Starting => continue,
                Phase::Ready => {
                    ready += 1;
                    let tools = catalog.tool_count(upstream);
                    format!("ready, {tools} tool{}", if tools == 1 { "" } else { "s" })
                }
                Phase::Disabled => "disabled".to_owned(),
                Phase::Failed(reason) | Phase::Degraded(reason) => {
                    failed += 1;
                    format!("FAILED: {reason}")
                }
                Phase::Stopped => "stopped".to_owned(),
                Phase::NeedsAuthorization(how) => format!("needs authorization: {how}"),
            };
            settled.insert(upstream.name().to_owned());
            let _ = writeln!(
                err,
                "  [{}/{}] {:<24} {line} ({:.1} s)",
                settled.len(),
                upstreams.len(),
                upstream.name(),
                started.elapsed().as_secs_f64()
            );
        }
        if finished {
            break;
        }
        if named_waiting_at.elapsed() >= STILL_STARTING_EVERY {
            named_waiting_at = Instant::now();
            let waiting: Vec<&str> = upstreams
                .iter()
                .map(|upstream| upstream.name())
                .filter(|name| !settled.contains(*name))
                .collect();
            if !waiting.is_empty() {
                let _ = writeln!(
                    err,
                    "  still starting: {} ({:.0} s)",
                    waiting.join(", "),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let total = settled.len();
    let _ = writeln!(
        err,
        "{ready} of {total} upstreams ready, {failed} failed, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
