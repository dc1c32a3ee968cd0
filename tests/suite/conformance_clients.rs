//! The conformance suite's client scenarios against the gateway's upstream side: for each
//! scenario, the suite's mock server is the gateway's only upstream, and
//! `tests/clients/conformance_client.py` starts `mcps serve` in front of it and drives through
//! it what the scenario asks of a client (with the official Python SDK client). Every
//! scenario of each revision passes, but `auth/*` (the gateway does not sign in to upstreams
//! yet) and the extensions no revision requires.

use crate::common;

use std::process::Command;

use common::{clients_dir, installed, mcps_bin, python};

/// The client scenarios the 0.2 line lists for `revision`.
fn scenarios(revision: &str) -> Vec<String> {
    let output = Command::new(installed("MCPS_TEST_NODE"))
        .arg(installed("MCPS_TEST_CONFORMANCE_0_2"))
        .args(["list", "--client", "--spec-version", revision])
        .output()
        .expect("list the client scenarios");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| !name.starts_with("auth/") && !name.starts_with("sep-2640-"))
        .map(str::to_owned)
        .collect()
}

fn check(revision: &str) {
    let scenarios = scenarios(revision);
    assert!(
        scenarios.len() >= 5,
        "too few client scenarios listed: {scenarios:?}"
    );
    let driver = format!(
        "{} {} {}",
        python(),
        clients_dir().join("conformance_client.py").display(),
        mcps_bin().display()
    );
    let mut failed = Vec::new();
    for scenario in &scenarios {
        let output = Command::new(installed("MCPS_TEST_NODE"))
            .arg(installed("MCPS_TEST_CONFORMANCE_0_2"))
            .args(["client", "--command", &driver, "--scenario", scenario])
            .args(["--spec-version", revision])
            .output()
            .expect("run a client scenario");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        if !text.contains("OVERALL: PASSED") {
            failed.push(format!("{scenario}:\n{text}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{revision}: {} of {} client scenarios fail through the gateway:\n{}",
        failed.len(),
        scenarios.len(),
        failed.join("\n\n")
    );
}

#[test]
fn the_2025_11_25_client_scenarios_pass_through_the_gateway() {
    check("2025-11-25");
}

#[test]
fn the_2026_07_28_client_scenarios_pass_through_the_gateway() {
    check("2026-07-28");
}
