//! The conformance suite's tasks scenarios (the tasks extension, SEP-2663; the 0.2 line's
//! `tasks-*`) through the gateway:
//! - in front of fixtures whose SDKs know nothing of tasks (the TypeScript and Python ones,
//!   which fail these scenarios directly), the gateway runs the fixture's tools as tasks,
//!   with `task:` set on them as the scenarios' fixture requirements say (`greet` is
//!   sync-only);
//! - in front of the rmcp fixture, which serves the extension itself (rmcp's `TaskManager`)
//!   and passes the scenarios directly, the gateway passes its tasks through, with no
//!   `task:` set.
//!
//! The TypeScript fixture runs in both upstream eras: in the session era its input rounds
//! are real requests mid-call, which the gateway turns into the task's `input_required`. The
//! Python fixture runs in 2026-07-28: its SDK answers input rounds as `input_required` results
//! on a session too, which no session-era peer takes (see `conformance.rs`).

use crate::common;

use common::{
    conformance_scenario,
    fixtures::{HttpFixture, Implementation},
    process::ServeProcess,
};

/// Every tasks scenario of the pinned 0.2 line (`tasks-status-notifications` is one the
/// suite itself skips for now, and passes with no check).
const SCENARIOS: [&str; 10] = [
    "tasks-lifecycle",
    "tasks-capability-negotiation",
    "tasks-wire-fields",
    "tasks-request-state-removal",
    "tasks-mrtr-input",
    "tasks-request-headers",
    "tasks-dispatch-and-envelope",
    "tasks-status-notifications",
    "tasks-required-task-error",
    "tasks-mrtr-composition",
];

/// Which of the fixture's tools run as tasks, as the scenarios require of a server.
const TASK_TOOLS: &str = "    tools:
      slow_compute: {task: optional}
      protocol_error_job: {task: optional}
      confirm_delete: {task: optional}
      multi_input: {task: optional}
      failing_job: {task: required}
      test_tool_with_task: {task: required}
";

/// Runs `scenario` against `url`: the ids of the checks that failed (none when the suite
/// says all passed), and what the suite printed.
fn run(url: &str, scenario: &str) -> (Vec<String>, String) {
    let (succeeded, text) = conformance_scenario(url, scenario);
    // "<time> [tasks-mrtr-partial-fulfillment    ] FAILURE ...", once out of its colours.
    let mut failed: Vec<String> = text
        .lines()
        .map(without_colours)
        .filter(|line| line.contains("] FAILURE"))
        .filter_map(|line| {
            let (_, rest) = line.split_once(" [")?;
            Some(rest.split(']').next()?.trim().to_owned())
        })
        .collect();
    // "Passed: 9/9, 0 failed, 0 warnings": a run that did not get that far failed whole.
    let all_passed = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Passed: "))
        .and_then(|counts| Some(counts.split_once(',')?.1.trim().starts_with("0 failed")))
        .unwrap_or(false);
    if failed.is_empty() && !(all_passed && succeeded) {
        failed.push(format!("the whole of {scenario}"));
    }
    (failed, text)
}

/// Every scenario through the gateway in front of `implementation`'s fixture, reached in
/// each of `protocols`, with `tools` (the `task:` settings) on it; only the checks
/// `cannot_carry` names for a protocol may fail.
fn check(
    implementation: Implementation,
    protocols: &[&str],
    tools: &str,
    cannot_carry: &[(&str, &str)],
) {
    let fixture = HttpFixture::start(implementation);
    for protocol in protocols {
        let gateway = ServeProcess::start(&format!(
            "upstreams:\n  fixture:\n    url: {:?}\n    prefix: \"\"\n    protocol: {protocol}\n{tools}",
            fixture.url
        ));
        for scenario in SCENARIOS {
            let (failed, output) = run(&gateway.mcp_url(), scenario);
            let lost: Vec<&String> = failed
                .iter()
                .filter(|check| !cannot_carry.contains(&(*protocol, check.as_str())))
                .collect();
            assert!(
                lost.is_empty(),
                "{} fixture, protocol {protocol}: {scenario} fails through the gateway: {lost:?}\n{output}\n{}",
                implementation.label(),
                gateway.log()
            );
        }
    }
}

#[test]
fn the_tasks_scenarios_pass_through_the_gateway_in_front_of_the_typescript_fixture() {
    // A session-era upstream asks one request at a time: a task's two inputs at once
    // (tasks-mrtr-input's partial fulfilment) cannot be put to the client together.
    check(
        Implementation::TypeScript,
        &["legacy", "auto"],
        TASK_TOOLS,
        &[("legacy", "tasks-mrtr-partial-fulfillment")],
    );
}

#[test]
fn the_tasks_scenarios_pass_through_the_gateway_in_front_of_the_python_fixture() {
    check(Implementation::Python, &["auto"], TASK_TOOLS, &[]);
}

#[test]
fn the_rust_fixtures_own_tasks_pass_through_the_gateway() {
    let fixture = HttpFixture::start(Implementation::Rust);
    for scenario in SCENARIOS {
        let (failed, output) = run(&fixture.url, scenario);
        assert!(
            failed.is_empty(),
            "directly, {scenario}: {failed:?}\n{output}"
        );
    }
    drop(fixture);
    // Its tasks are a 2026-07-28 client's: reached in that revision, with no `task:` set.
    check(Implementation::Rust, &["auto"], "", &[]);
}

/// `line` without its terminal colour codes (`ESC [ ... m`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        match (in_code, c) {
            (false, '\u{1b}') => in_code = true,
            (false, c) => plain.push(c),
            (true, 'm') => in_code = false,
            (true, _) => {}
        }
    }
    plain
}
