//! Scenario 1c: scenario 1's calls from wrk, a load generator nobody here wrote, so that the
//! ratios do not rest on our own client. wrk (Debian's `wrk`; `benches/run.sh` installs it
//! when it can) runs the scripts in `benches/wrk/` from one thread over 16 and 64
//! connections, against the echo upstream directly and through the gateway (the upstream
//! over HTTP, and over stdio; and over stdio through the tool search's `call_tool`, on a
//! gateway with `catalog.tool_search`). In the session era every connection calls on one
//! session, opened beforehand. Without wrk the scenario says it is skipped.
//!
//! Each row is the sum of [`ROUNDS`] short runs taken in turns with the other targets of
//! its era and concurrency (direct, HTTP, stdio, through `call_tool`, direct, …): a machine
//! whose other load comes and goes then weighs on them alike, where one long run each would
//! put a busy spell on one of them.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use super::{
    load::{Era, McpClient},
    micros,
    procs::{self, echo_over_http, echo_stdio_entry, gateway, gateway_with},
};

/// Runs per row, taken in turns with the other targets.
const ROUNDS: u32 = 4;

/// What one wrk run printed on its `RESULT` line.
struct Run {
    requests: u64,
    errors: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Where a row's calls go, and how to read the CPU time of what serves them.
struct Target<'a> {
    name: &'static str,
    url: &'a str,
    tool: &'static str,
    /// The tool that calls `tool` (the tool search's `call_tool`), if it is not called itself.
    via: Option<&'static str>,
    upstream_cpu: &'a dyn Fn() -> Duration,
    /// `None` for the echo loaded directly.
    gateway_cpu: Option<&'a dyn Fn() -> Duration>,
}

/// A row: one target's rounds at one era and concurrency, summed.
struct Row {
    target: &'static str,
    era: Era,
    connections: usize,
    requests: u64,
    errors: u64,
    seconds: f64,
    /// Each round's p50 and p99 (ms); the row shows their medians.
    p50s: Vec<f64>,
    p99s: Vec<f64>,
    gateway_cpu: Option<Duration>,
    upstream_cpu: Duration,
}

impl Row {
    fn new(target: &'static str, era: Era, connections: usize, direct: bool) -> Self {
        Self {
            target,
            era,
            connections,
            requests: 0,
            errors: 0,
            seconds: 0.0,
            p50s: Vec::new(),
            p99s: Vec::new(),
            gateway_cpu: (!direct).then_some(Duration::ZERO),
            upstream_cpu: Duration::ZERO,
        }
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }

    fn per_call(&self, cpu: Duration) -> Duration {
        cpu / self.requests.max(1) as u32
    }
}

fn has_wrk() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs wrk on `target` for `seconds`; `session` is the session-era session.
fn wrk(target: &Target, era: Era, session: Option<&str>, connections: usize, seconds: u32) -> Run {
    let script = match era {
        Era::Modern => "calls_2026.lua",
        Era::Legacy => "calls_session.lua",
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/wrk")
        .join(script);
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(script)
        .arg(target.url)
        .env("TOOL", target.tool)
        .env("VIA", target.via.unwrap_or_default())
        .env("SID", session.unwrap_or_default())
        .env("MCP_PV", era.label())
        .stderr(Stdio::inherit())
        .output()
        .expect("run wrk");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("wrk printed no RESULT line: {stdout}"));
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    Run {
        requests: field("requests") as u64,
        errors: field("errors") as u64,
        per_second: field("rps"),
        p50_ms: field("p50_ms"),
        p99_ms: field("p99_ms"),
    }
}

/// The session a session-era run calls on, at `url`, and the client that holds it.
async fn session_at(url: &str, era: Era) -> Option<(McpClient, String)> {
    if era == Era::Modern {
        return None;
    }
    let client = McpClient::connect(url, era).await.expect("open a session");
    let id = client.session().expect("a session id").to_owned();
    Some((client, id))
}

/// One run of `target`, added to its `row`.
fn round(target: &Target, row: &mut Row, session: Option<&str>, seconds: u32) {
    let upstream_before = (target.upstream_cpu)();
    let gateway_before = target.gateway_cpu.map(|meter| meter());
    let run = wrk(target, row.era, session, row.connections, seconds);
    row.upstream_cpu += (target.upstream_cpu)().saturating_sub(upstream_before);
    if let (Some(meter), Some(before), Some(total)) =
        (target.gateway_cpu, gateway_before, row.gateway_cpu.as_mut())
    {
        *total += meter().saturating_sub(before);
    }
    row.requests += run.requests;
    row.errors += run.errors;
    row.seconds += run.requests as f64 / run.per_second.max(f64::MIN_POSITIVE);
    row.p50s.push(run.p50_ms);
    row.p99s.push(run.p99_ms);
}

pub async fn scenario(quick: bool) {
    println!("## 1c. tools/call from wrk (one thread; rounds in turns with direct)\n");
    if !has_wrk() {
        println!("Skipped: wrk is not installed (Debian's `wrk`).\n");
        return;
    }
    let (seconds, rounds) = if quick { (1, 1) } else { (2, ROUNDS) };
    let (echo, echo_url) = echo_over_http();
    let (http_gateway, http_gateway_url) = gateway(&format!("  echo:\n    url: {echo_url:?}\n"));
    let (stdio_gateway, stdio_gateway_url) = gateway(&echo_stdio_entry("echo"));
    let search = "catalog:\n  tool_search: true\n";
    let (search_gateway, search_gateway_url) = gateway_with(search, &echo_stdio_entry("echo"));
    let echo_cpu = || echo.cpu();
    // The stdio echo upstream is the gateway's child, not `echo`.
    let stdio_echo_cpu = || procs::upstreams_cpu(stdio_gateway.pid());
    let http_gateway_cpu = || http_gateway.cpu();
    let stdio_gateway_cpu = || stdio_gateway.cpu();
    let search_echo_cpu = || procs::upstreams_cpu(search_gateway.pid());
    let search_gateway_cpu = || search_gateway.cpu();
    let targets = [
        Target {
            name: "direct",
            url: &echo_url,
            tool: "echo",
            via: None,
            upstream_cpu: &echo_cpu,
            gateway_cpu: None,
        },
        Target {
            name: "gateway → HTTP upstream",
            url: &http_gateway_url,
            tool: "echo__echo",
            via: None,
            upstream_cpu: &echo_cpu,
            gateway_cpu: Some(&http_gateway_cpu),
        },
        Target {
            name: "gateway → stdio upstream",
            url: &stdio_gateway_url,
            tool: "echo__echo",
            via: None,
            upstream_cpu: &stdio_echo_cpu,
            gateway_cpu: Some(&stdio_gateway_cpu),
        },
        Target {
            name: "gateway → stdio upstream, through call_tool",
            url: &search_gateway_url,
            tool: "echo__echo",
            via: Some("call_tool"),
            upstream_cpu: &search_echo_cpu,
            gateway_cpu: Some(&search_gateway_cpu),
        },
    ];
    let mut rows = Vec::new();
    for era in [Era::Legacy, Era::Modern] {
        let mut sessions = Vec::new();
        for target in &targets {
            let session = session_at(target.url, era).await;
            // A warm-up: connections, pools and the first calls' allocations.
            let id = session.as_ref().map(|(_, id)| id.as_str());
            wrk(target, era, id, 16, 1);
            sessions.push(session);
        }
        for connections in [16, 64] {
            let mut group: Vec<Row> = targets
                .iter()
                .map(|target| Row::new(target.name, era, connections, target.gateway_cpu.is_none()))
                .collect();
            for _ in 0..rounds {
                for ((target, row), session) in targets.iter().zip(&mut group).zip(&sessions) {
                    let id = session.as_ref().map(|(_, id)| id.as_str());
                    round(target, row, id, seconds);
                }
            }
            rows.extend(group);
        }
    }
    print_rows(&rows);
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn print_rows(rows: &[Row]) {
    println!(
        "| target | era | connections | p50 ms | p99 ms | calls/s | × direct calls/s | gateway CPU µs/call | upstream CPU µs/call | gateway ÷ upstream CPU | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let direct = rows
            .iter()
            .find(|other| {
                other.target == "direct"
                    && other.era == row.era
                    && other.connections == row.connections
            })
            .expect("a direct row for each");
        let upstream = row.per_call(row.upstream_cpu);
        let gateway = row.gateway_cpu.map(|cpu| row.per_call(cpu));
        let ratio = match gateway {
            Some(gateway) if !upstream.is_zero() => {
                format!("{:.2}", gateway.as_secs_f64() / upstream.as_secs_f64())
            }
            _ => "—".to_owned(),
        };
        println!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.0} | {:.2} | {} | {} | {ratio} | {} |",
            row.target,
            row.era.label(),
            row.connections,
            median(&row.p50s),
            median(&row.p99s),
            row.per_second(),
            row.per_second() / direct.per_second(),
            micros(gateway),
            micros(Some(upstream)),
            row.errors,
        );
    }
    println!();
}
