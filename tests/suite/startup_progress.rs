//! On a terminal, starting many upstreams shows progress: a line as each settles (ready
//! with its tools, or failed with why), the names of those still starting every 10 s, and a
//! summary. The gateway's stderr here is a real
//! pseudo-terminal; with a pipe (every other test) no such line appears.

use crate::common;

use std::{
    io::Read,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::{fixture_upstream_yaml, mcps_bin, process::ConfigDir};

#[test]
fn a_terminal_sees_each_upstream_settle() {
    let config = ConfigDir::new(&format!(
        "upstreams:\n{}{}  broken:\n    command: /nonexistent/server\n  slow:\n    command: sleep\n    args: [\"3600\"]\n    startup_timeout_secs: 11\n",
        fixture_upstream_yaml("alpha", "alpha", &["echo", "more"], ""),
        fixture_upstream_yaml("beta", "beta", &["echo"], ""),
    ));
    let terminal = nix::pty::openpty(None, None).expect("a pseudo-terminal");
    let mut child = Command::new(mcps_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "-c"])
        .arg(config.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(terminal.slave))
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let mut screen = std::fs::File::from(terminal.master);
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buffer = [0u8; 4096];
        while let Ok(read) = screen.read(&mut buffer) {
            if read == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buffer[..read]));
            // The summary, once its line is whole.
            let summary = text.find("upstreams ready");
            if summary.is_some_and(|at| text[at..].contains('\n')) {
                let _ = lines.send(text.clone());
            }
        }
    });
    let shown = received.recv_timeout(Duration::from_secs(60));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let shown = shown.expect("no start-up summary on the terminal");
    assert!(shown.contains("Starting 4 upstreams"), "{shown}");
    assert!(
        shown.contains("alpha") && shown.contains("ready, 2 tools"),
        "{shown}"
    );
    assert!(
        shown.contains("beta") && shown.contains("ready, 1 tool "),
        "{shown}"
    );
    assert!(
        shown.contains("broken") && shown.contains("FAILED"),
        "{shown}"
    );
    assert!(shown.contains("still starting: slow (10 s)"), "{shown}");
    assert!(shown.contains("[4/4] slow"), "{shown}");
    assert!(
        shown.contains("2 of 4 upstreams ready, 2 failed"),
        "{shown}"
    );
}
