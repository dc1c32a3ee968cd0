//! After the gateway exits (SIGTERM for `serve`, stdin EOF for `stdio`), no process of any
//! upstream is left: not the child, not a grandchild, not one that ignores SIGTERM. Nor after
//! it is killed outright (`kill -9`), when it can do nothing itself.

use crate::common;

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

/// Upstreams that leave processes of their own, in each way we know, all with `marker`: an
/// `sh -c` chain whose background `sleep` ignores SIGTERM, a nested shell that waits on its
/// own child, and a server that forks a SIGTERM-ignoring child itself.
fn upstreams_that_fork(marker: &str) -> String {
    let nested = format!(
        "sh -c 'sleep 3600 & wait' & exec {} --tool echo",
        example_bin("fixture_upstream").display()
    );
    format!(
        "{}  nested:\n    command: sh\n    args: [\"-c\", {nested:?}]\n    env: {{MCPS_TEST_MARKER: {marker:?}}}\n  forks:\n    command: {:?}\n    args: [\"--grandchild\"]\n    env: {{MCPS_TEST_MARKER: {marker:?}}}\n",
        upstream_with_grandchild("chain", marker),
        example_bin("fault_upstream").display().to_string(),
    )
}

/// Processes of the three [`upstreams_that_fork`]: two each, and three for the nested shell.
const FORKED_PROCESSES: usize = 7;

fn kill_9(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
}

/// Waits up to `limit` for every process with `marker` to be gone.
fn assert_none_left_within(marker: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = processes_with_marker(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes still alive {limit:?} after the gateway died: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_processes(marker: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with_marker(marker).len() < count {
        assert!(
            Instant::now() < deadline,
            "expected {count} upstream processes, found {:?}",
            processes_with_marker(marker)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill_9_of_serve_leaves_no_upstream_process_behind() {
    let marker = unique_marker("serve-kill");
    let mut gateway = ServeProcess::start(&format!("upstreams:\n{}", upstreams_that_fork(&marker)));
    assert_eq!(gateway.health()["status"], "ok", "{}", gateway.log());
    wait_for_processes(&marker, FORKED_PROCESSES);
    kill_9(gateway.child.id());
    gateway.wait_exit();
    assert_none_left_within(&marker, Duration::from_secs(2));
}

#[test]
fn kill_9_of_stdio_leaves_no_upstream_process_behind() {
    let marker = unique_marker("stdio-kill");
    let config = ConfigDir::new(&format!("upstreams:\n{}", upstreams_that_fork(&marker)));
    let mut child = spawn_stdio(&config);
    wait_for_processes(&marker, FORKED_PROCESSES);
    let mut stdout = child.stdout.take().unwrap();
    kill_9(child.id());
    child.wait().expect("reap mcps stdio");
    // Nothing of ours holds the client's end open: it sees the gateway go at once.
    let (eof, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        let _ = eof.send(());
    });
    seen.recv_timeout(Duration::from_secs(1))
        .expect("the client's stdout closed with the gateway");
    assert_none_left_within(&marker, Duration::from_secs(2));
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
