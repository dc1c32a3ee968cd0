//! After the gateway exits (SIGTERM for `serve`, stdin EOF for `stdio`), no process of any
//! upstream is left: not the child, not a grandchild, not one that ignores SIGTERM.

mod common;

use std::{
    io::Write,
    time::{Duration, Instant},
};

use common::{
    example_bin,
    process::{ConfigDir, ServeProcess, processes_with_marker, spawn_stdio},
};

/// An upstream whose shell leaves a SIGTERM-ignoring `sleep` behind as a grandchild, with
/// `marker` in the environment of all of them.
fn upstream_with_grandchild(name: &str, marker: &str) -> String {
    let script = format!(
        "(trap '' TERM; exec sleep 3600) & exec {} --tool echo",
        example_bin("fixture_upstream").display()
    );
    format!(
        "  {name}:\n    command: sh\n    args: [\"-c\", {script:?}]\n    env: {{MCPS_TEST_MARKER: {marker:?}}}\n"
    )
}

fn unique_marker(test: &str) -> String {
    format!(
        "{test}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    )
}

fn assert_no_process_left(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with_marker(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_leaves_no_upstream_process_behind() {
    let marker = unique_marker("serve");
    let gateway = ServeProcess::start(&format!(
        "timeouts:\n  shutdown_grace_secs: 0.5\nupstreams:\n{}{}",
        upstream_with_grandchild("one", &marker),
        upstream_with_grandchild("two", &marker)
    ));
    assert_eq!(gateway.health()["status"], "ok", "{}", gateway.log());
    assert!(
        processes_with_marker(&marker).len() >= 4,
        "expected two upstreams with a grandchild each"
    );
    let status = gateway.terminate();
    assert!(status.success(), "exit status {status}");
    assert_no_process_left(&marker);
}

#[test]
fn stdin_eof_leaves_no_upstream_process_behind() {
    let marker = unique_marker("stdio");
    let config = ConfigDir::new(&format!(
        "timeouts:\n  shutdown_grace_secs: 0.5\nupstreams:\n{}",
        upstream_with_grandchild("one", &marker)
    ));
    let mut child = spawn_stdio(&config);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"0"}}}}}}"#
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with_marker(&marker).len() < 2 {
        assert!(Instant::now() < deadline, "the upstream never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stdin);
    let status = child.wait().expect("mcps stdio exits");
    assert!(status.success(), "exit status {status}");
    assert_no_process_left(&marker);
}
