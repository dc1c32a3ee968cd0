//! The MCPS.ONE benchmark: the gateway against a direct connection to the same upstream,
//! measured in the same run, printed as markdown tables. Run it with `benches/run.sh`
//! (release build); it is not part of the test suite.
//!
//! Scenarios:
//! 1. `tools/call` latency (p50, p99) and throughput at 1, 16 and 64 clients, in both
//!    protocol eras, over streamable HTTP, to the echo upstream directly and through the
//!    gateway (the upstream over HTTP, and over stdio); with the gateway's own CPU time per
//!    call. Also over stdio: `mcps stdio` against the echo upstream spawned directly; and
//!    the same calls from wrk, a load generator we did not write (`wrk.rs`).
//! 2. `tools/list` latency with 1, 10 and 50 upstreams (answered from the catalog).
//! 3. Cold start: process start → first `tools/list` answered, with 10 stdio upstreams.
//! 4. Memory: the gateway's RSS with 0, 100 and 1000 idle sessions.
//! 5. Peers, when `benches/run.sh` could install them: `mcp-proxy` and a FastMCP proxy in
//!    front of the same stdio echo upstream, against the gateway, at 1, 16 and 64 clients.
//! 6. Chaos: 64 clients on 10 stdio upstreams for 60 s, one upstream killed every 10 s: no
//!    failed call on the upstreams never killed, RSS under a bound, no descriptor leak.
//! 7. Replicas: 1, 2 and 3 gateways on one PostgreSQL behind nginx, against one gateway
//!    loaded directly; CPU per call of each part and the database's writes per call.
//!
//! `benches/run.sh -- --quick` runs fewer calls (a smoke test of the benchmark itself);
//! `-- --only calls|stdio|wrk|list|cold|memory|peers|chaos|replicas` runs one scenario; and
//! `-- --load URL TOOL CLIENTS CALLS [legacy|modern] [...]` only puts load on a running server (to
//! profile it: start it under `perf record`, then load it); `--stdio-counted` puts calls
//! through a stdio server it spawns under callgrind (`benches/instructions.sh`).

mod chaos;
mod load;
mod peers;
mod procs;
mod replicas;
mod stdio_load;
mod wrk;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use load::{Era, McpClient, Measured};
use procs::{echo_over_http, echo_stdio_entry, gateway, gateway_in, release_bin};
use serde_json::json;
use stdio_load::StdioClient;

/// How many calls each client makes at each concurrency.
fn calls_per_client(clients: usize, quick: bool) -> usize {
    let total = if quick { 300 } else { 4000 };
    (total / clients).max(20)
}

fn ms(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1000.0)
}

struct Row {
    target: &'static str,
    era: Era,
    clients: usize,
    measured: Measured,
    cpu_per_call: Option<Duration>,
    /// The echo upstream's own CPU time per call (over HTTP its own process, over stdio the
    /// gateway's child): what one rmcp server costs, the floor under a gateway that is one too.
    upstream_cpu_per_call: Option<Duration>,
}

/// The CPU time each of `meters` reads over `run`, per call.
async fn cpu_per_call_over(
    meters: [&dyn Fn() -> Duration; 2],
    run: impl std::future::Future<Output = Measured>,
) -> (Measured, [Duration; 2]) {
    let before = meters.map(|meter| meter());
    let measured = run.await;
    let calls = measured.calls.max(1) as u32;
    let mut per_call = [Duration::ZERO; 2];
    for (index, meter) in meters.iter().enumerate() {
        per_call[index] = meter().saturating_sub(before[index]) / calls;
    }
    (measured, per_call)
}

async fn scenario_calls(quick: bool) {
    let (echo, echo_url) = echo_over_http();
    let (http_gateway, http_gateway_url) = gateway(&format!("  echo:\n    url: {echo_url:?}\n"));
    let (stdio_gateway, stdio_gateway_url) = gateway(&echo_stdio_entry("echo"));
    let mut rows = Vec::new();
    for era in [Era::Legacy, Era::Modern] {
        for clients in [1, 16, 64] {
            let calls = calls_per_client(clients, quick);
            let echo_cpu = || echo.cpu();
            let (direct, [upstream_cpu, _]) = cpu_per_call_over(
                [&echo_cpu, &echo_cpu],
                load::run(&echo_url, era, "echo", clients, calls),
            )
            .await;
            rows.push(Row {
                target: "direct",
                era,
                clients,
                measured: direct,
                cpu_per_call: None,
                upstream_cpu_per_call: Some(upstream_cpu),
            });
            // The stdio echo upstream is the gateway's child, not `echo`.
            let stdio_echo_cpu = || procs::upstreams_cpu(stdio_gateway.pid());
            for (target, process, upstream, url) in [
                (
                    "gateway → HTTP upstream",
                    &http_gateway,
                    &echo_cpu as &dyn Fn() -> Duration,
                    &http_gateway_url,
                ),
                (
                    "gateway → stdio upstream",
                    &stdio_gateway,
                    &stdio_echo_cpu,
                    &stdio_gateway_url,
                ),
            ] {
                let (measured, [cpu_per_call, upstream_cpu]) = cpu_per_call_over(
                    [&|| process.cpu(), upstream],
                    load::run(url, era, "echo__echo", clients, calls),
                )
                .await;
                rows.push(Row {
                    target,
                    era,
                    clients,
                    measured,
                    cpu_per_call: Some(cpu_per_call),
                    upstream_cpu_per_call: Some(upstream_cpu),
                });
            }
        }
    }
    println!("## 1. tools/call over streamable HTTP\n");
    println!(
        "| target | era | clients | p50 ms | p99 ms | calls/s | × direct calls/s | p50 − direct ms | gateway CPU µs/call | upstream CPU µs/call | gateway ÷ upstream CPU | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let direct = rows
            .iter()
            .find(|other| {
                other.target == "direct" && other.era == row.era && other.clients == row.clients
            })
            .expect("a direct row for each");
        let ratio = row.measured.per_second() / direct.measured.per_second();
        let added = row.measured.percentile(0.5).as_secs_f64()
            - direct.measured.percentile(0.5).as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.2} | {} | {} | {} | {} | {} |",
            row.target,
            row.era.label(),
            row.clients,
            ms(row.measured.percentile(0.5)),
            ms(row.measured.percentile(0.99)),
            row.measured.per_second(),
            ratio,
            if row.target == "direct" {
                "—".to_owned()
            } else {
                format!("{:.3}", added * 1000.0)
            },
            micros(row.cpu_per_call),
            micros(row.upstream_cpu_per_call),
            match (row.cpu_per_call, row.upstream_cpu_per_call) {
                (Some(gateway), Some(upstream)) if !upstream.is_zero() => {
                    format!("{:.2}", gateway.as_secs_f64() / upstream.as_secs_f64())
                }
                _ => "—".to_owned(),
            },
            row.measured.errors,
        );
    }
    println!();
}

fn micros(cpu: Option<Duration>) -> String {
    cpu.map_or("—".to_owned(), |cpu| {
        format!("{:.0}", cpu.as_secs_f64() * 1e6)
    })
}

fn scenario_stdio(quick: bool) {
    let calls = if quick { 300 } else { 3000 };
    let mut echo = StdioClient::spawn(Command::new(release_bin("echo_upstream")));
    let before = echo.process.cpu();
    let direct = echo.run("echo", calls);
    let echo_cpu = echo.process.cpu().saturating_sub(before) / direct.calls.max(1) as u32;
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("proxy.yaml");
    std::fs::write(
        &config,
        format!(
            "logging:\n  level: warn\nupstreams:\n{}",
            echo_stdio_entry("echo")
        ),
    )
    .expect("write the config");
    let mut command = Command::new(release_bin("mcps"));
    command.args(["stdio", "-c"]).arg(&config);
    let mut through = StdioClient::spawn(command);
    let gateway = through.process.pid();
    let before = [through.process.cpu(), procs::upstreams_cpu(gateway)];
    let measured = through.run("echo__echo", calls);
    let per_call =
        |now: Duration, before: Duration| now.saturating_sub(before) / measured.calls.max(1) as u32;
    let cpu = per_call(through.process.cpu(), before[0]);
    let upstream_cpu = per_call(procs::upstreams_cpu(gateway), before[1]);
    println!("## 1b. tools/call over stdio (one client, sequential)\n");
    println!(
        "| target | p50 ms | p99 ms | calls/s | p50 − direct ms | gateway CPU µs/call | upstream CPU µs/call |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| direct (echo upstream spawned by the client) | {} | {} | {:.0} | — | — | {} |",
        ms(direct.percentile(0.5)),
        ms(direct.percentile(0.99)),
        direct.per_second(),
        micros(Some(echo_cpu)),
    );
    println!(
        "| `mcps stdio` → stdio upstream | {} | {} | {:.0} | {:.3} | {} | {} |",
        ms(measured.percentile(0.5)),
        ms(measured.percentile(0.99)),
        measured.per_second(),
        (measured.percentile(0.5).as_secs_f64() - direct.percentile(0.5).as_secs_f64()) * 1000.0,
        micros(Some(cpu)),
        micros(Some(upstream_cpu)),
    );
    println!();
}

async fn scenario_list(quick: bool) {
    let requests = if quick { 100 } else { 2000 };
    println!("## 2. tools/list from the catalog\n");
    println!("| upstreams | tools | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|");
    for upstreams in [1, 10, 50] {
        let entries: String = (0..upstreams)
            .map(|n| echo_stdio_entry(&format!("echo{n}")))
            .collect();
        let (_gateway, url) = gateway(&entries);
        let mut client = McpClient::connect(&url, Era::Legacy)
            .await
            .expect("connect");
        let listed = client
            .request("tools/list", None, json!({}))
            .await
            .expect("tools/list");
        let tools = listed.matches("\"name\"").count();
        let mut latencies = Vec::with_capacity(requests);
        for _ in 0..requests {
            let sent = Instant::now();
            client
                .request("tools/list", None, json!({}))
                .await
                .expect("tools/list");
            latencies.push(sent.elapsed());
        }
        let measured = Measured::new(latencies, 0, Duration::ZERO);
        println!(
            "| {upstreams} | {tools} | {} | {} |",
            ms(measured.percentile(0.5)),
            ms(measured.percentile(0.99))
        );
    }
    println!();
}

/// Spawn to the first answered `tools/list`, which the gateway answers once every upstream
/// has started.
async fn first_list(upstreams: usize) -> (Duration, procs::Process) {
    let entries: String = (0..upstreams)
        .map(|n| echo_stdio_entry(&format!("echo{n}")))
        .collect();
    let started = Instant::now();
    let (process, url) = gateway(&entries);
    let mut client = McpClient::connect(&url, Era::Legacy)
        .await
        .expect("connect");
    client
        .request("tools/list", None, json!({}))
        .await
        .expect("tools/list");
    (started.elapsed(), process)
}

async fn scenario_cold_start() {
    let (one, _) = first_list(1).await;
    let (ten, gateway) = first_list(10).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("## 3. Cold start and idle memory\n");
    println!("| gateway with | spawn → first tools/list ms | RSS MiB (idle) |");
    println!("|---|---:|---:|");
    println!("| 1 stdio upstream | {} | — |", ms(one));
    println!(
        "| 10 stdio upstreams | {} | {:.1} |",
        ms(ten),
        gateway.rss() as f64 / (1024.0 * 1024.0)
    );
    println!();
}

async fn scenario_memory(quick: bool) {
    // jemalloc gives freed pages back to the system over its decay time (10 s), and the
    // session halves that go to sleep free theirs within the measurement's wait: with the
    // decay at 0 it gives them back at once, and RSS is what the sessions hold, not when the
    // pages they freed happen to go back.
    let (gateway, url) = gateway_in(
        "",
        &echo_stdio_entry("echo"),
        &[("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")],
    );
    // One call, so the catalog and the upstream connection are in place before measuring.
    let mut first = McpClient::connect(&url, Era::Legacy)
        .await
        .expect("connect");
    first
        .call("echo__echo", &json!({"message": "warm"}))
        .await
        .expect("call");
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = gateway.rss();
    let mut rows = vec![(0usize, "—", baseline, baseline)];
    let mut sessions = Vec::new();
    for target in if quick { vec![100] } else { vec![100, 1000] } {
        while sessions.len() < target {
            sessions.push(
                McpClient::connect(&url, Era::Legacy)
                    .await
                    .expect("connect"),
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        rows.push((target, "awake", gateway.rss(), baseline));
    }
    // Past `timeouts.session_sleep_secs` (10 s by default) and a turn of the reaper, every
    // session is asleep.
    tokio::time::sleep(Duration::from_secs(if quick { 12 } else { 16 })).await;
    rows.push((sessions.len(), "asleep", gateway.rss(), baseline));
    // The clients go, their connections with them; their sessions stay open in the gateway
    // (a session outlives its connections), so what is left is the sessions' own cost.
    let open = sessions.len();
    drop(sessions);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before_listening = gateway.rss();
    rows.push((
        open,
        "asleep, connections closed",
        before_listening,
        baseline,
    ));
    // Sessions whose clients listen on their GET streams, as the SDKs' clients do; counted
    // from the gateway as the sessions above left it.
    let mut listening = Vec::new();
    while listening.len() < open {
        let client = McpClient::connect(&url, Era::Legacy)
            .await
            .expect("connect");
        let stream = client.listen().await.expect("GET stream");
        listening.push((client, stream));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listening_awake = gateway.rss();
    tokio::time::sleep(Duration::from_secs(if quick { 12 } else { 16 })).await;
    rows.push((
        listening.len(),
        "listening on their GET streams, awake",
        listening_awake,
        before_listening,
    ));
    rows.push((
        listening.len(),
        "listening on their GET streams, asleep",
        gateway.rss(),
        before_listening,
    ));
    drop(listening);
    println!("## 4. Memory with idle session-era sessions\n");
    println!(
        "Each session has its own keep-alive connection, as the load's clients do; a listening one a second, its GET stream. The gateway runs with jemalloc's decay at 0: freed pages go back at once.\n"
    );
    println!("| sessions | state | RSS MiB | bytes per session |");
    println!("|---:|---|---:|---:|");
    for (count, state, rss, from) in rows {
        let per = if count == 0 {
            "—".to_owned()
        } else {
            format!("{}", rss.saturating_sub(from) / count as u64)
        };
        println!(
            "| {count} | {state} | {:.1} | {per} |",
            rss as f64 / (1024.0 * 1024.0)
        );
    }
    println!();
}

/// `--load URL TOOL CLIENTS CALLS [legacy|modern] [message-in-header|via-call-tool|search-tools]`: load
/// only, one line of results.
async fn load_only(args: &[String]) {
    let [url, tool, clients, calls, rest @ ..] = args else {
        panic!(
            "--load URL TOOL CLIENTS CALLS [legacy|modern] [message-in-header|via-call-tool|search-tools]"
        );
    };
    let era = match rest.first().map(String::as_str) {
        Some("modern") => Era::Modern,
        _ => Era::Legacy,
    };
    let clients = clients.parse().expect("CLIENTS is a number");
    let calls = calls.parse().expect("CALLS is a number");
    let shape = match rest.get(1).map(String::as_str) {
        Some("message-in-header") => load::CallShape::MessageInHeader,
        Some("via-call-tool") => load::CallShape::ViaCallTool,
        Some("search-tools") => load::CallShape::SearchTools,
        _ => load::CallShape::Plain,
    };
    let measured = load::run_with(url, era, tool, clients, calls, shape).await;
    println!(
        "{} calls, {} errors, {:.0} calls/s, p50 {} ms, p99 {} ms",
        measured.calls,
        measured.errors,
        measured.per_second(),
        ms(measured.percentile(0.5)),
        ms(measured.percentile(0.99))
    );
}

/// `--stdio-counted TOOL CALLS legacy|modern|typed COMMAND ARGS…`: spawns COMMAND (a server
/// over stdio, run under valgrind's callgrind), warms it up, then zeroes its counters, puts
/// CALLS sequential calls of TOOL through it and dumps them; prints the calls answered.
/// `typed`: 2026-07-28 calls that take rmcp's typed way in the gateway.
fn stdio_counted(args: &[String]) {
    let [tool, calls, era, program, command_args @ ..] = args else {
        panic!("--stdio-counted TOOL CALLS legacy|modern|typed COMMAND ARGS…");
    };
    let calls = calls.parse().expect("CALLS is a number");
    let mut command = Command::new(program);
    command.args(command_args);
    let mut client = match era.as_str() {
        "legacy" => StdioClient::spawn_in(command, Era::Legacy),
        "modern" => StdioClient::spawn_in(command, Era::Modern),
        "typed" => StdioClient::spawn_in(command, Era::Modern)
            .with_meta_key("io.modelcontextprotocol/unread"),
        other => panic!("no era {other:?}"),
    };
    client.warm_up(tool);
    let pid = client.process.pid().to_string();
    let callgrind = |action: &str| {
        let done = Command::new("callgrind_control")
            .args([action, &pid])
            .output()
            .expect("run callgrind_control");
        assert!(done.status.success(), "callgrind_control {action} {pid}");
    };
    callgrind("--zero");
    let measured = client.measure(tool, calls);
    callgrind("--dump");
    println!("{} calls, {} errors", measured.calls, measured.errors);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == "--load") {
        return load_only(&args[at + 1..]).await;
    }
    if let Some(at) = args.iter().position(|arg| arg == "--stdio-counted") {
        return stdio_counted(&args[at + 1..]);
    }
    // `cargo test --all-targets` runs this binary too, without the `--bench` that
    // `cargo bench` passes: the benchmark is not a test.
    if !args.iter().any(|arg| arg == "--bench") {
        println!("the benchmark runs with benches/run.sh");
        return;
    }
    let only = args
        .iter()
        .position(|arg| arg == "--only")
        .and_then(|at| args.get(at + 1))
        .map(String::as_str);
    let runs = |scenario: &str| only.is_none_or(|only| only == scenario);
    let quick = args.iter().any(|arg| arg == "--quick");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# MCPS.ONE benchmark\n");
    println!(
        "{} cores, {}; load generator and servers share the machine.\n",
        cores,
        if quick { "quick run" } else { "full run" }
    );
    if runs("calls") {
        scenario_calls(quick).await;
    }
    if runs("stdio") {
        scenario_stdio(quick);
    }
    if runs("wrk") {
        wrk::scenario(quick).await;
    }
    if runs("list") {
        scenario_list(quick).await;
    }
    if runs("cold") {
        scenario_cold_start().await;
    }
    if runs("memory") {
        scenario_memory(quick).await;
    }
    if runs("peers") {
        peers::scenario(quick).await;
    }
    if runs("chaos") {
        chaos::scenario(quick).await;
    }
    if runs("replicas") {
        replicas::scenario(quick).await;
    }
}
