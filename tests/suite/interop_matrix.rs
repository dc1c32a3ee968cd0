//! The interop matrix: two official Python SDK clients at once, of each era, through the
//! gateway on one shared upstream, for each conformance fixture (rmcp, TypeScript SDK, Python
//! SDK) reached in each era. Features: sampling, elicitation in form and URL mode, roots,
//! progress, cancellation, logging, tools/prompts/resources list_changed, resource
//! subscribe/updated/unsubscribe (`tests/clients/matrix.py` checks that each answer reaches
//! the client that caused it and no other). Over stdio, a subset.
//!
//! What a client gets depends on the SDK behind the gateway as much as on the gateway (the
//! TypeScript SDK refuses, on a 2026-07-28 request, the sampling request of a tool written for
//! sessions), so each client era is first run directly against the fixture: every feature
//! that works there must work through the gateway. The gateway may do more (it bridges a
//! session-era upstream's requests to a 2026-07-28 client); it may not do less, except where
//! [`known_gap`] says why.
//!
//! The same runs through three gateways on one PostgreSQL behind nginx's round robin
//! ([`check_replicas`]): a client's requests, its answers to the upstream's requests, its
//! retries and its GET stream each land on any replica. And through mcp-remote, the bridge
//! desktop clients reach remote servers through.

use crate::common;

use std::{
    collections::{BTreeMap, HashMap},
    process::Command,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use common::{
    balancer::Balancer,
    clients_dir,
    fixtures::{HttpFixture, Implementation, stdio_upstream_yaml},
    mcp_remote_command, mcps_bin,
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
    python,
};

const CLIENT_ERAS: [&str; 2] = ["legacy", "2026-07-28"];

/// How the matrix's clients reach the server under test.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Door {
    /// Streamable HTTP: the target is `["--url", URL]`.
    Http,
    /// stdio, each client starting its own process: `["--stdio", COMMAND, ARG...]`. Every
    /// client starts its own gateway and upstream, so list changes and subscriptions, which
    /// are about sharing, are checked through the other doors ([`Door::features`]).
    Stdio,
    /// mcp-remote, the stdio bridge a desktop client reaches a remote server through: each
    /// client starts one, which reaches the server's URL over streamable HTTP
    /// (`["--stdio", NODE, MCP_REMOTE, URL, ...]`). Every feature.
    McpRemote,
}

impl Door {
    /// What each client checks through it (`matrix.py`'s names).
    fn features(self) -> &'static [&'static str] {
        match self {
            Self::Stdio => &["sampling", "elicitation", "progress", "logging"],
            Self::Http | Self::McpRemote => &[
                "sampling",
                "elicitation",
                "url_elicitation",
                "cancellation",
                "roots",
                "progress",
                "logging",
                "list_changed",
                "resource_updates",
            ],
        }
    }
}

/// Each feature's outcome for one client era: `None` if it worked, else why not.
fn run_matrix(
    door: Door,
    target: &[&str],
    mode: &str,
    prefix: &str,
) -> BTreeMap<String, Option<String>> {
    let mut command = Command::new(python());
    command
        .arg(clients_dir().join("matrix.py"))
        .args(["--mode", mode, "--prefix", prefix])
        .arg("--only")
        .args(door.features());
    // mcp-remote keeps what it learns of a server's sign-in in a directory of its own.
    let remote_state =
        (door == Door::McpRemote).then(|| tempfile::tempdir().expect("a directory for mcp-remote"));
    if let Some(state) = &remote_state {
        command.env("MCP_REMOTE_CONFIG_DIR", state.path());
    }
    let output = command
        .args(target)
        .output()
        .expect("run the matrix client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let outcomes: BTreeMap<String, Option<String>> = stdout
        .lines()
        .filter_map(|line| {
            if let Some(feature) = line.strip_prefix("ok ") {
                Some((feature.to_owned(), None))
            } else {
                let (feature, why) = line.strip_prefix("FAILED ")?.split_once(": ")?;
                Some((feature.to_owned(), Some(why.to_owned())))
            }
        })
        .collect();
    let unreported: Vec<&str> = door
        .features()
        .iter()
        .copied()
        .filter(|feature| !outcomes.contains_key(*feature))
        .collect();
    assert!(
        unreported.is_empty(),
        "the matrix client did not report {unreported:?}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    outcomes
}

/// A feature that works directly but cannot through this hop, and why. Both come from an
/// SDK's behaviour on a session-era connection, which the gateway shares between clients.
fn known_gap(implementation: Implementation, session_hop: bool, feature: &str) -> bool {
    session_hop
        && match (implementation, feature) {
            // rmcp 3.11's session-era HTTP server sends a tool's log messages on the session's
            // standalone stream, not on the stream of the request that caused them (only
            // progress and requests are routed there), so on a shared session they belong to
            // no client in particular and the gateway sends them to none.
            (Implementation::Rust, "logging") => true,
            // The fixture's write-once roots tool answers `input_required` on a session too,
            // which no session-era peer accepts: it works only in 2026-07-28, directly.
            (Implementation::Rust, "roots") => true,
            _ => false,
        }
}

/// The outcomes of one client era run directly against `implementation`'s fixture (over
/// `target`), run once per fixture, era and door: the tests that reach one fixture in
/// different ways share it, since it does not involve the gateway.
fn direct_run(
    implementation: Implementation,
    door: Door,
    target: &[&str],
    mode: &'static str,
) -> BTreeMap<String, Option<String>> {
    type Run = Arc<OnceLock<BTreeMap<String, Option<String>>>>;
    /// The fixture's label, the client era, and the door.
    type Key = (&'static str, &'static str, Door);
    static RUNS: OnceLock<Mutex<HashMap<Key, Run>>> = OnceLock::new();
    let run = RUNS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry((implementation.label(), mode, door))
        .or_default()
        .clone();
    // Another test may be running it: this waits for that one.
    run.get_or_init(|| run_matrix(door, target, mode, ""))
        .clone()
}

/// The features that work directly (`direct` target) and fail through the gateway
/// (`through`), for each client era, but the known gaps.
fn lost(
    implementation: Implementation,
    protocol: &str,
    door: Door,
    direct: &[&str],
    through: &[&str],
) -> Vec<String> {
    let mut lost = Vec::new();
    for mode in CLIENT_ERAS {
        let direct = direct_run(implementation, door, direct, mode);
        let through = run_matrix(door, through, mode, "fx__");
        // `auto` reaches every fixture in 2026-07-28, and session-era clients on a
        // session-era twin connection.
        let session_hop = protocol == "legacy" || mode == "legacy";
        for (feature, outcome) in &direct {
            let failed = through.get(feature).cloned().flatten();
            if outcome.is_none()
                && let Some(why) = failed
                && !known_gap(implementation, session_hop, feature)
            {
                lost.push(format!("{mode} client, {feature}: {why}"));
            }
        }
    }
    lost
}

fn check(implementation: Implementation, protocol: &str) {
    let fixture = HttpFixture::start(implementation);
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: {protocol}\n",
        fixture.url
    ));
    let lost = lost(
        implementation,
        protocol,
        Door::Http,
        &["--url", &fixture.url],
        &["--url", &gateway.mcp_url()],
    );
    assert!(
        lost.is_empty(),
        "{} fixture reached with protocol: {protocol}: these work directly and fail through the gateway:\n{}\n{}",
        implementation.label(),
        lost.join("\n"),
        gateway.log()
    );
}

#[test]
fn the_rust_fixture_in_the_session_era() {
    check(Implementation::Rust, "legacy");
}

#[test]
fn the_rust_fixture_in_2026_07_28() {
    check(Implementation::Rust, "auto");
}

#[test]
fn the_typescript_fixture_in_the_session_era() {
    check(Implementation::TypeScript, "legacy");
}

#[test]
fn the_typescript_fixture_in_2026_07_28() {
    check(Implementation::TypeScript, "auto");
}

#[test]
fn the_python_fixture_in_the_session_era() {
    check(Implementation::Python, "legacy");
}

#[test]
fn the_python_fixture_in_2026_07_28() {
    check(Implementation::Python, "auto");
}

/// The same through three gateways on one PostgreSQL behind nginx's round robin: each
/// client's requests, answers and notifications land on any of them, and every feature that
/// works through one gateway must work so.
async fn check_replicas(implementation: Implementation, protocol: &str) {
    let database = fresh_database().await;
    let fixture = HttpFixture::start(implementation);
    let yaml = format!(
        "database:\n  url: {database:?}\n  secret_key: shared by the replicas\nupstreams:\n  fx:\n    url: {:?}\n    protocol: {protocol}\n",
        fixture.url
    );
    // Debug: on a failure, the replicas' logs say where a notification went.
    let replicas: Vec<ServeProcess> = (0..3)
        .map(|_| {
            ServeProcess::start_in(
                ConfigDir::new(&yaml),
                &[("RUST_LOG", "mcps=debug,rmcp=warn")],
            )
        })
        .collect();
    for replica in &replicas {
        replica.wait_ready(Duration::from_secs(30));
    }
    let balancer = Balancer::start(
        &replicas
            .iter()
            .map(|replica| replica.base.trim_start_matches("http://").to_owned())
            .collect::<Vec<_>>(),
    );
    let through = balancer.url("/mcp");
    let lost = tokio::task::spawn_blocking({
        let direct = fixture.url.clone();
        let protocol = protocol.to_owned();
        move || {
            lost(
                implementation,
                &protocol,
                Door::Http,
                &["--url", &direct],
                &["--url", &through],
            )
        }
    })
    .await
    .expect("the matrix runs");
    assert!(
        lost.is_empty(),
        "{} fixture reached with protocol: {protocol}, through three replicas: these work directly and fail:\n{}\n{}",
        implementation.label(),
        lost.join("\n"),
        replicas
            .iter()
            .map(ServeProcess::log)
            .collect::<Vec<_>>()
            .join("\n----\n"),
    );
}

#[tokio::test]
async fn the_typescript_fixture_through_replicas_in_the_session_era() {
    check_replicas(Implementation::TypeScript, "legacy").await;
}

#[tokio::test]
async fn the_python_fixture_through_replicas_in_2026_07_28() {
    check_replicas(Implementation::Python, "auto").await;
}

/// The stdio door: each client runs `mcps stdio` on a config with the fixture over stdio.
fn check_stdio(implementation: Implementation, protocol: &str) {
    let config = ConfigDir::new(&format!(
        "upstreams:\n{}",
        stdio_upstream_yaml(implementation, "fx", &[], protocol)
    ));
    let (program, args, _) = implementation.command(true);
    let mcps = mcps_bin().display().to_string();
    let path = config.path().display().to_string();
    let mut direct = vec!["--stdio", program.as_str()];
    direct.extend(args.iter().map(String::as_str));
    let lost = lost(
        implementation,
        protocol,
        Door::Stdio,
        &direct,
        &["--stdio", &mcps, "stdio", "-c", &path],
    );
    assert!(
        lost.is_empty(),
        "{} fixture over stdio with protocol: {protocol}: these work directly and fail through `mcps stdio`:\n{}",
        implementation.label(),
        lost.join("\n"),
    );
}

// `auto` reaches the fixture in both eras here: 2026-07-28 for 2026-07-28 clients, the
// session era (a twin process) for session-era ones.

#[test]
fn the_rust_fixture_over_stdio() {
    check_stdio(Implementation::Rust, "auto");
}

#[test]
fn the_typescript_fixture_over_stdio() {
    check_stdio(Implementation::TypeScript, "auto");
}

#[test]
fn the_python_fixture_over_stdio() {
    check_stdio(Implementation::Python, "auto");
}

/// The mcp-remote door: each client runs mcp-remote (as a desktop client configured for a
/// remote server does), which reaches the fixture, or the gateway in front of it, over
/// streamable HTTP.
#[test]
fn the_typescript_fixture_through_mcp_remote() {
    let implementation = Implementation::TypeScript;
    let fixture = HttpFixture::start(implementation);
    let gateway = ServeProcess::start(&format!("upstreams:\n  fx:\n    url: {:?}\n", fixture.url));
    let (node, mcp_remote) = mcp_remote_command();
    let to = |url: &str| {
        [
            "--stdio",
            &node,
            &mcp_remote,
            url,
            "--transport",
            "http-only",
        ]
        .map(str::to_owned)
    };
    let (direct, through) = (to(&fixture.url), to(&gateway.mcp_url()));
    let lost = lost(
        implementation,
        "auto",
        Door::McpRemote,
        &direct.each_ref().map(String::as_str),
        &through.each_ref().map(String::as_str),
    );
    assert!(
        lost.is_empty(),
        "these work through mcp-remote to the TypeScript fixture and fail through mcp-remote to \
         the gateway in front of it:\n{}\n{}",
        lost.join("\n"),
        gateway.log()
    );
}
