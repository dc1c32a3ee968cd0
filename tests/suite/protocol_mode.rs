//! What the gateway proposes to an upstream, read off the wire (the upstream's stdin, copied
//! to its stderr, which the gateway logs): `protocol: legacy` opens with `initialize`
//! proposing a session-era revision and never `server/discover`; `protocol: modern` opens with
//! `server/discover` and never `initialize`; `protocol: auto` over stdio opens in the session
//! era (one process serves one era, and the session era serves clients of both), like
//! `legacy`. The upstream is the official Python SDK's `mcp-server-time`. A stdio server of
//! 2026-07-28 alone (the TypeScript fixture with `--modern-only`) refuses that `initialize`,
//! and `auto` opens it again with `server/discover`.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    fixtures::{Implementation, stdio_upstream_yaml},
    process::ServeProcess,
    python,
};
use serde_json::Value;

/// An upstream entry for `mcp-server-time` whose stdin is copied to its stderr.
fn tapped_time_server(name: &str, protocol: &str) -> String {
    let script = format!(
        "tee /dev/stderr | exec {} -m mcp_server_time --local-timezone UTC",
        python()
    );
    format!(
        "  {name}:\n    command: sh\n    args: [\"-c\", {script:?}]\n    protocol: {protocol}\n    startup_timeout_secs: 30\n"
    )
}

/// The JSON-RPC requests the gateway sent to upstream `name`, in order, from its log.
fn sent_to(log: &str, name: &str) -> Vec<Value> {
    log.lines()
        .filter(|line| line.contains(&format!("upstream={name}")))
        .filter_map(|line| {
            let start = line.find("stderr: {")? + "stderr: ".len();
            let end = line.rfind('}')? + 1;
            serde_json::from_str::<Value>(&line[start..end]).ok()
        })
        .filter(|message| message.get("method").is_some())
        .collect()
}

fn methods(sent: &[Value]) -> Vec<&str> {
    sent.iter()
        .filter_map(|message| message["method"].as_str())
        .collect()
}

#[test]
fn each_protocol_mode_proposes_only_its_own_revisions() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}{}{}",
        tapped_time_server("legacy", "legacy"),
        tapped_time_server("modern", "modern"),
        tapped_time_server("auto", "auto"),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["legacy", "modern", "auto"]
        .iter()
        .any(|name| sent_to(&gateway.log(), name).is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "no handshake seen:\n{}",
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = gateway.log();

    let legacy = sent_to(&log, "legacy");
    assert_eq!(methods(&legacy)[0], "initialize", "{legacy:?}");
    assert!(!methods(&legacy).contains(&"server/discover"), "{legacy:?}");
    assert_eq!(
        legacy[0]["params"]["protocolVersion"], "2025-11-25",
        "{legacy:?}"
    );

    let modern = sent_to(&log, "modern");
    assert_eq!(methods(&modern)[0], "server/discover", "{modern:?}");
    assert!(!methods(&modern).contains(&"initialize"), "{modern:?}");

    let auto = sent_to(&log, "auto");
    assert_eq!(methods(&auto)[0], "initialize", "{auto:?}");
    assert!(!methods(&auto).contains(&"server/discover"), "{auto:?}");
    assert_eq!(
        auto[0]["params"]["protocolVersion"], "2025-11-25",
        "{auto:?}"
    );
}

#[test]
fn auto_opens_a_stdio_server_of_2026_07_28_alone_with_discover() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        stdio_upstream_yaml(
            Implementation::TypeScript,
            "modern",
            &["--modern-only"],
            "auto"
        )
    ));
    let health = gateway.health();
    let upstream = &health["upstreams"][0];
    assert_eq!(upstream["state"], "ready", "{health}\n{}", gateway.log());
    assert_eq!(upstream["protocol_version"], "2026-07-28", "{health}");
    assert!(
        gateway
            .log()
            .contains("it refused initialize: opening it with server/discover"),
        "{}",
        gateway.log()
    );
}
