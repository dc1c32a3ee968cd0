//! Scenario 5: other MCP proxies in front of the same stdio echo upstream, loaded like the
//! gateway, in the same run. `benches/run.sh` installs them (pinned, from PyPI) and names
//! them in `MCPS_BENCH_MCP_PROXY` (the `mcp-proxy` program) and `MCPS_BENCH_FASTMCP_PYTHON`
//! (a Python with `fastmcp`); a peer that is not there is reported as skipped.

use std::{path::PathBuf, process::Command, time::Duration};

use super::{
    load::{self, Era, Measured},
    ms,
    procs::{Process, echo_stdio_entry, free_port, gateway, release_bin, start_listening},
};

/// A proxy under test: its process, URL and the name of the echo tool through it.
struct Target {
    name: &'static str,
    process: Process,
    url: String,
    tool: &'static str,
}

fn mcp_proxy() -> Option<Target> {
    let program = std::env::var_os("MCPS_BENCH_MCP_PROXY")?;
    let port = free_port();
    let mut command = Command::new(program);
    command
        .args(["--port", &port.to_string()])
        .arg(release_bin("echo_upstream"));
    Some(Target {
        name: "mcp-proxy 0.13.0",
        process: start_listening(command, port),
        url: format!("http://127.0.0.1:{port}/mcp"),
        tool: "echo",
    })
}

fn fastmcp_proxy() -> Option<Target> {
    let python = std::env::var_os("MCPS_BENCH_FASTMCP_PYTHON")?;
    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/fastmcp_proxy.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(port.to_string())
        .arg(release_bin("echo_upstream"));
    Some(Target {
        name: "FastMCP 4.2.3 proxy",
        process: start_listening(command, port),
        url: format!("http://127.0.0.1:{port}/mcp"),
        tool: "echo",
    })
}

pub async fn scenario(quick: bool) {
    let (process, url) = gateway(&echo_stdio_entry("echo"));
    let mut targets = vec![Target {
        name: "MCPS.ONE",
        process,
        url,
        tool: "echo__echo",
    }];
    let mut skipped = Vec::new();
    for (name, peer) in [
        ("mcp-proxy", mcp_proxy as fn() -> Option<Target>),
        ("FastMCP", fastmcp_proxy),
    ] {
        match peer() {
            Some(target) => targets.push(target),
            None => skipped.push(name),
        }
    }
    // The peers are slow: fewer calls, so the scenario stays within a minute or two.
    let total = if quick { 100 } else { 1200 };
    println!("## 5. Peers: the same stdio echo upstream behind each proxy (session era)\n");
    println!(
        "| proxy | clients | p50 ms | p99 ms | calls/s | MCPS.ONE calls/s ÷ this | proxy CPU µs/call | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for clients in [1, 16, 64] {
        let calls = (total / clients).max(10);
        let mut ours: Option<f64> = None;
        for target in &targets {
            let before = target.process.cpu();
            let measured: Measured =
                load::run(&target.url, Era::Legacy, target.tool, clients, calls).await;
            let cpu = target.process.cpu().saturating_sub(before);
            let per_call = cpu
                .checked_div(measured.calls.max(1) as u32)
                .unwrap_or(Duration::ZERO);
            let ours = *ours.get_or_insert(measured.per_second());
            println!(
                "| {} | {clients} | {} | {} | {:.0} | {:.1} | {:.0} | {} |",
                target.name,
                ms(measured.percentile(0.5)),
                ms(measured.percentile(0.99)),
                measured.per_second(),
                ours / measured.per_second(),
                per_call.as_secs_f64() * 1e6,
                measured.errors,
            );
        }
    }
    if !skipped.is_empty() {
        println!("\nNot installed, skipped: {}.", skipped.join(", "));
    }
    println!();
}
