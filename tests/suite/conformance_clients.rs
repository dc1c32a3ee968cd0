//! The conformance suite's client scenarios against the gateway's upstream side: for each
//! scenario, the suite's mock server is the gateway's only upstream, and
//! `tests/clients/conformance_client.py` starts `mcps serve` in front of it and drives through
//! it what the scenario asks of a client (with the official Python SDK client). Every
//! scenario of each revision passes, the `auth/*` ones included: for those the upstream has
//! an `oauth:` block built from the scenario's context, and the driver signs the gateway in
//! as an operator would (`POST .../oauth/authorize`, then the authorization server's redirect
//! to `/oauth/callback`), again whenever the gateway asks (a wider scope, a new authorization
//! server). The extensions no revision requires are left out, but the two OAuth grants of
//! the gateway's own config: client credentials with a secret, and the 2025-03-26 fallbacks.

use crate::common;

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

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
        .filter(|name| !name.starts_with("sep-2640-"))
        .map(str::to_owned)
        .collect()
}

fn check(revision: &str) {
    let scenarios = scenarios(revision);
    assert!(
        scenarios.len() >= 5,
        "too few client scenarios listed: {scenarios:?}"
    );
    run(revision, &scenarios);
}

/// How many scenarios run at once: each is mostly waiting (a gateway starting, a sign-in's
/// redirects, the suite's timers), so a few at a time keep two cores busy without starving
/// the one that measures a timeout.
const AT_ONCE: usize = 4;

/// Runs `scenarios` of `revision` through the gateway, a few at once; every one must pass.
fn run(revision: &str, scenarios: &[String]) {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..AT_ONCE.min(scenarios.len()) {
            scope.spawn(|| {
                while let Some(scenario) = scenarios.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err(report) = run_one(revision, scenario) {
                        failed.lock().unwrap().push(report);
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap();
    assert!(
        failed.is_empty(),
        "{revision}: {} of {} client scenarios fail through the gateway:\n{}",
        failed.len(),
        scenarios.len(),
        failed.join("\n\n")
    );
}

/// One scenario through the gateway; its report when it does not pass.
fn run_one(revision: &str, scenario: &str) -> Result<(), String> {
    let driver = format!(
        "{} {} {}",
        python(),
        clients_dir().join("conformance_client.py").display(),
        mcps_bin().display()
    );
    let mut command = Command::new(installed("MCPS_TEST_NODE"));
    command.arg(installed("MCPS_TEST_CONFORMANCE_0_2")).args([
        "client",
        "--command",
        &driver,
        "--scenario",
        scenario,
    ]);
    if !revision.is_empty() {
        command.args(["--spec-version", revision]);
    }
    let output = command.output().expect("run a client scenario");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    if text.contains("OVERALL: PASSED") {
        Ok(())
    } else {
        Err(format!("{scenario}:\n{text}"))
    }
}

#[test]
fn the_2025_11_25_client_scenarios_pass_through_the_gateway() {
    check("2025-11-25");
}

#[test]
fn the_2026_07_28_client_scenarios_pass_through_the_gateway() {
    check("2026-07-28");
}

/// The OAuth scenarios outside the two revisions that the gateway's config covers: the
/// client credentials grant with a secret (an extension), and the 2025-03-26 revision's
/// metadata and endpoint fallbacks.
#[test]
fn the_oauth_scenarios_outside_the_revisions_pass_through_the_gateway() {
    let extension = [
        "auth/client-credentials-basic".to_owned(),
        "auth/client-credentials-jwt".to_owned(),
    ];
    run("", &extension);
    let fallbacks = [
        "auth/2025-03-26-oauth-metadata-backcompat".to_owned(),
        "auth/2025-03-26-oauth-endpoint-fallback".to_owned(),
    ];
    run("2025-03-26", &fallbacks);
}
