//! Scenario 6, chaos: 64 clients call 10 stdio upstreams for 60 s while one upstream process
//! is killed (SIGKILL) every 10 s. The first five upstreams take turns being killed; the
//! other five never are, and must answer every call. The gateway's RSS is sampled every
//! second and its open file descriptors counted before and after.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    load::{Era, McpClient},
    procs::{self, Process, echo_stdio_entry, gateway},
};

const UPSTREAMS: usize = 10;
/// Upstreams `0..KILLED` take turns being killed; the rest never are.
const KILLED: usize = 5;
const CLIENTS: usize = 64;
/// The RSS the gateway must stay under, for the table's verdict.
const RSS_BOUND_MIB: f64 = 64.0;

/// Calls answered and failed, per upstream.
type Tally = Arc<Mutex<HashMap<usize, (u64, u64)>>>;

pub async fn scenario(quick: bool) {
    let (run_for, kill_every) = if quick {
        (Duration::from_secs(12), Duration::from_secs(3))
    } else {
        (Duration::from_secs(60), Duration::from_secs(10))
    };
    let entries: String = (0..UPSTREAMS)
        .map(|n| {
            format!(
                "{}    env: {{MCPS_CHAOS: \"echo{n}\"}}\n",
                echo_stdio_entry(&format!("echo{n}"))
            )
        })
        .collect();
    let (gateway, url) = gateway(&entries);
    // Before the clients' connections, so the count after (when they are gone) compares.
    let fds_before = open_fds(&gateway);
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(
            McpClient::connect(&url, Era::Legacy)
                .await
                .expect("connect"),
        );
    }
    let tally: Tally = Arc::default();
    let deadline = Instant::now() + run_for;
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(n, mut client)| {
            let tally = tally.clone();
            tokio::spawn(async move {
                let upstream = n % UPSTREAMS;
                let tool = format!("echo{upstream}__echo");
                let arguments = json!({"message": "chaos"});
                while Instant::now() < deadline {
                    let answered = client.call(&tool, &arguments).await.is_ok();
                    {
                        let mut tally = tally.lock().unwrap();
                        let entry = tally.entry(upstream).or_default();
                        if answered {
                            entry.0 += 1;
                        } else {
                            entry.1 += 1;
                        }
                    }
                    if !answered {
                        // Its upstream is restarting: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();

    let mut rss_max = 0u64;
    let rss_start = gateway.rss();
    let mut kills = 0usize;
    let mut next_kill = Instant::now() + kill_every;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max = rss_max.max(gateway.rss());
        if Instant::now() >= next_kill && Instant::now() + Duration::from_secs(1) < deadline {
            let victim = format!("echo{}", kills % KILLED);
            if let Some(pid) = upstream_pid(&gateway, &victim) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                kills += 1;
            }
            next_kill += kill_every;
        }
    }
    for task in tasks {
        task.await.expect("client task");
    }
    // Let the last restarts settle before counting descriptors.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fds_after = open_fds(&gateway);
    let tally = tally.lock().unwrap();
    let sum = |range: std::ops::Range<usize>| {
        range.fold((0, 0), |(ok, failed), n| {
            let (o, f) = tally.get(&n).copied().unwrap_or_default();
            (ok + o, failed + f)
        })
    };
    let (healthy_ok, healthy_failed) = sum(KILLED..UPSTREAMS);
    let (killed_ok, killed_failed) = sum(0..KILLED);
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "## 6. Chaos: {CLIENTS} clients × {UPSTREAMS} stdio upstreams for {run_for:?}, one killed every {kill_every:?}\n"
    );
    println!("| measure | value | bound | verdict |");
    println!("|---|---:|---|---|");
    println!("| upstream processes killed | {kills} | — | — |");
    println!("| calls answered by the never-killed upstreams | {healthy_ok} | — | — |");
    println!(
        "| calls failed on the never-killed upstreams | {healthy_failed} | 0 | {} |",
        verdict(healthy_failed == 0)
    );
    println!(
        "| calls answered / failed on the killed upstreams | {killed_ok} / {killed_failed} | failures while they restart | — |"
    );
    println!(
        "| gateway RSS at start → highest | {:.1} → {:.1} MiB | < {RSS_BOUND_MIB} MiB | {} |",
        mib(rss_start),
        mib(rss_max),
        verdict(mib(rss_max) < RSS_BOUND_MIB)
    );
    println!(
        "| gateway open file descriptors before → after | {fds_before} → {fds_after} | no growth | {} |",
        verdict(fds_after <= fds_before)
    );
    println!();
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

fn open_fds(process: &Process) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", process.pid())).map_or(0, |dir| dir.count())
}

/// The pid of the gateway's child process for upstream `name` (by its `MCPS_CHAOS` variable).
fn upstream_pid(gateway: &Process, name: &str) -> Option<u32> {
    let needle = format!("MCPS_CHAOS={name}");
    procs::children(gateway.pid()).find(|pid| {
        std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
            environ
                .split(|byte| *byte == 0)
                .any(|var| var == needle.as_bytes())
        })
    })
}
