//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned by
//! `tests/run.sh`) against each conformance fixture (rmcp, TypeScript SDK, Python SDK)
//! directly, and through the gateway fronting it (with `prefix: ""`, beside a second, prefixed
//! upstream: the reference `server-everything`) in each upstream era: the session era
//! (`protocol: legacy`) and 2026-07-28 (`protocol: auto`, which every fixture's SDK answers
//! in that revision). Every scenario that passes directly must pass through the gateway.
//!
//! Runs: the 0.1 line's active suite, and the 0.2 line's `--requirements 2025-11-25` and
//! `--requirements 2026-07-28`. A fixture may fail a scenario directly (its SDK lacks the
//! feature: SEP-2243 header validation in rmcp 3.11, SSE polling in the Python SDK's default
//! wiring): such a scenario is not asked of the gateway, so no expected-failures file is
//! needed. The tasks extension's scenarios are in `conformance_tasks.rs`. `docs/interop.md` tabulates every run; `tests/interop.sh`
//! regenerates it (the ignored test `write_the_interop_table` below).

use crate::common;

use std::{collections::BTreeMap, fmt::Write as _, process::Command};

use common::{
    everything_command,
    fixtures::{HttpFixture, Implementation},
    installed,
    process::ServeProcess,
};

/// A suite run: the suite's package, its arguments, and how the table names it.
#[derive(Clone, Copy)]
struct Suite {
    package: &'static str,
    args: &'static [&'static str],
    label: &'static str,
}

const SUITES: [Suite; 3] = [
    Suite {
        package: "MCPS_TEST_CONFORMANCE_0_1",
        args: &[],
        label: "0.1 active",
    },
    Suite {
        package: "MCPS_TEST_CONFORMANCE_0_2",
        args: &["--requirements", "2025-11-25"],
        label: "0.2 `--requirements 2025-11-25`",
    },
    Suite {
        package: "MCPS_TEST_CONFORMANCE_0_2",
        args: &["--requirements", "2026-07-28"],
        label: "0.2 `--requirements 2026-07-28`",
    },
];

/// The eras the gateway reaches a fixture in: `protocol:` value, and how the table names it.
const ERAS: [(&str, &str); 2] = [("legacy", "session era"), ("auto", "2026-07-28")];

/// One run of the suite: each scenario's outcome, and what the suite printed.
struct Run {
    scenarios: BTreeMap<String, bool>,
    output: String,
}

impl Run {
    fn count(&self) -> usize {
        self.scenarios.values().filter(|passed| **passed).count()
    }
}

fn run_suite(suite: Suite, url: &str) -> Run {
    let output = Command::new(installed("MCPS_TEST_NODE"))
        .arg(installed(suite.package))
        .args(["server", "--url", url])
        .args(suite.args)
        .output()
        .expect("run the conformance suite");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let summary = text.split("=== SUMMARY ===").nth(1).unwrap_or_default();
    let scenarios = summary
        .lines()
        .filter_map(|line| {
            let (passed, rest) = match line
                .trim_start()
                .split_at_checked(line.trim_start().find(' ')?)?
            {
                ("✓", rest) => (true, rest),
                ("✗", rest) => (false, rest),
                _ => return None,
            };
            let name = rest.trim().split([':', ' ']).next()?.to_owned();
            Some((name, passed))
        })
        .collect();
    Run {
        scenarios,
        output: text,
    }
}

fn gateway_in_front_of(fixture: &HttpFixture, protocol: &str) -> ServeProcess {
    let (node, everything) = everything_command();
    ServeProcess::start(&format!(
        "upstreams:\n  fixture:\n    url: {:?}\n    prefix: \"\"\n    protocol: {protocol}\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    startup_timeout_secs: 60\n",
        fixture.url
    ))
}

/// What one fixture and one suite show, directly and in each upstream era.
struct Comparison {
    direct: Run,
    /// Per era: the run through the gateway, the scenarios that pass directly but not there,
    /// and the gateway's log.
    through: Vec<(Run, Vec<String>, String)>,
}

fn compare(implementation: Implementation, suite: Suite) -> Comparison {
    compare_on(&HttpFixture::start(implementation), implementation, suite)
}

fn compare_on(fixture: &HttpFixture, implementation: Implementation, suite: Suite) -> Comparison {
    let direct = run_suite(suite, &fixture.url);
    assert!(
        !direct.scenarios.is_empty(),
        "the suite ran no scenario against the {} fixture:\n{}",
        implementation.label(),
        direct.output
    );
    let through = ERAS
        .iter()
        .map(|(protocol, _)| {
            let gateway = gateway_in_front_of(fixture, protocol);
            let run = run_suite(suite, &gateway.mcp_url());
            let lost = direct
                .scenarios
                .iter()
                .filter(|(name, passed)| **passed && run.scenarios.get(*name) != Some(&true))
                .map(|(name, _)| name.clone())
                .collect();
            (run, lost, gateway.log())
        })
        .collect();
    Comparison { direct, through }
}

/// What a session-era hop cannot carry to a 2026-07-28 client (`docs/interop.md` says why):
/// scenarios of the 2026-07-28 requirements that may pass directly and fail through a gateway
/// told to reach the fixture in the session era (`protocol: legacy`).
fn session_hop_cannot_carry(implementation: Implementation, scenario: &str) -> bool {
    // A session-era upstream asks with real requests, one at a time and under no key; the
    // gateway makes each an `input_required` round of its own, so the scenarios' keys, their
    // grouping and the fixture's own requestState do not survive.
    scenario.starts_with("input-required-result-")
        // The rmcp and Python fixtures answer `input_required` on a session too, which no
        // session-era peer accepts, so their undeclared-capability check (-32021) never
        // comes to a request the gateway could refuse. (The TypeScript SDK asks, and the
        // gateway answers the client -32021 itself.)
        || (scenario == "server-stateless" && implementation != Implementation::TypeScript)
        // The rmcp fixture's own tasks are a 2026-07-28 client's: a session-era hop never
        // asks for them. (The gateway's own tasks, on either hop: `conformance_tasks.rs`.)
        || (scenario.starts_with("tasks-") && implementation == Implementation::Rust)
}

fn check(implementation: Implementation, suite: Suite) {
    check_comparison(implementation, suite, &compare(implementation, suite));
}

fn check_comparison(implementation: Implementation, suite: Suite, comparison: &Comparison) {
    for ((protocol, era), (run, lost, log)) in ERAS.iter().zip(&comparison.through) {
        let lost: Vec<&String> = lost
            .iter()
            .filter(|scenario| {
                !(*protocol == "legacy" && session_hop_cannot_carry(implementation, scenario))
            })
            .collect();
        assert!(
            lost.is_empty(),
            "{} fixture, {era} upstream, {}: these scenarios pass directly and fail through the gateway: {lost:?}\n{}\n{log}",
            implementation.label(),
            suite.label,
            run.output,
        );
    }
}

#[test]
fn the_rust_fixture_passes_the_0_1_suite_through_the_gateway_in_both_eras() {
    check(Implementation::Rust, SUITES[0]);
}

#[test]
fn the_rust_fixture_passes_the_2025_11_25_requirements_through_the_gateway_in_both_eras() {
    check(Implementation::Rust, SUITES[1]);
}

#[test]
fn the_rust_fixture_passes_the_2026_07_28_requirements_through_the_gateway_in_both_eras() {
    check(Implementation::Rust, SUITES[2]);
}

#[test]
fn the_typescript_fixture_passes_the_0_1_suite_through_the_gateway_in_both_eras() {
    check(Implementation::TypeScript, SUITES[0]);
}

#[test]
fn the_typescript_fixture_passes_the_2025_11_25_requirements_through_the_gateway_in_both_eras() {
    check(Implementation::TypeScript, SUITES[1]);
}

#[test]
fn the_typescript_fixture_passes_the_2026_07_28_requirements_through_the_gateway_in_both_eras() {
    check(Implementation::TypeScript, SUITES[2]);
}

#[test]
fn the_python_fixture_passes_the_0_1_suite_through_the_gateway_in_both_eras() {
    check(Implementation::Python, SUITES[0]);
}

#[test]
fn the_python_fixture_passes_the_2025_11_25_requirements_through_the_gateway_in_both_eras() {
    check(Implementation::Python, SUITES[1]);
}

#[test]
fn the_python_fixture_passes_the_2026_07_28_requirements_through_the_gateway_in_both_eras() {
    check(Implementation::Python, SUITES[2]);
}

/// Starlette, under FastAPI and the Python SDK alike, answers a mounted app's path without
/// its final slash with a 307 to the path with it. The suite's client (fetch) follows it, and
/// so must the gateway, on rmcp's client and on its own lane (`upstream/redirects.rs`): the
/// gateway is configured with the URL that redirects.
#[test]
fn the_python_fixture_behind_starlettes_slash_redirect_passes_the_0_1_suite_through_the_gateway_in_both_eras()
 {
    let fixture = HttpFixture::start_python_mounted();
    let comparison = compare_on(&fixture, Implementation::Python, SUITES[0]);
    check_comparison(Implementation::Python, SUITES[0], &comparison);
    for (_, _, log) in &comparison.through {
        assert!(
            log.contains(&format!("{0} redirects to {0}/", fixture.url)),
            "the gateway did not say that its URL redirects:\n{log}"
        );
    }
}

/// Runs the whole matrix and writes `docs/interop.md` (`tests/interop.sh`).
#[test]
#[ignore = "regenerates docs/interop.md; run by tests/interop.sh"]
fn write_the_interop_table() {
    let mut table = String::from(
        "| Fixture | Suite | Upstream era | Direct | Through the gateway | Passing directly, failing through |\n|---|---|---|---|---|---|\n",
    );
    for implementation in Implementation::ALL {
        for suite in SUITES {
            let comparison = compare(implementation, suite);
            let direct = &comparison.direct;
            for ((_, era), (run, lost, _)) in ERAS.iter().zip(&comparison.through) {
                let lost = if lost.is_empty() {
                    "none".to_owned()
                } else {
                    lost.join(", ")
                };
                writeln!(
                    table,
                    "| {} | {} | {era} | {}/{} | {}/{} | {lost} |",
                    implementation.label(),
                    suite.label,
                    direct.count(),
                    direct.scenarios.len(),
                    run.count(),
                    run.scenarios.len(),
                )
                .expect("write to a string");
            }
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/interop.md");
    let document = std::fs::read_to_string(&path).expect("docs/interop.md exists");
    let (head, rest) = document
        .split_once(TABLE_START)
        .expect("docs/interop.md has the table's start marker");
    let (_, tail) = rest
        .split_once(TABLE_END)
        .expect("docs/interop.md has the table's end marker");
    std::fs::write(
        &path,
        format!("{head}{TABLE_START}\n{table}{TABLE_END}{tail}"),
    )
    .expect("write docs/interop.md");
}

const TABLE_START: &str = "<!-- conformance table: generated by tests/interop.sh -->";
const TABLE_END: &str = "<!-- end of the conformance table -->";
