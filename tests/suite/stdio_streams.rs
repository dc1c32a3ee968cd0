//! `mcps stdio` reads and writes its standard streams on the runtime's reactor when the client
//! hands it pipes (Python's `subprocess`) or Unix sockets (Node's `child_process`), and
//! leaves a stream alone when it is also stderr. Each way is checked by what the kernel
//! says of the process's descriptors (`/proc/PID/fdinfo`), and by a call that goes through.

use crate::common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::{fd::OwnedFd, unix::net::UnixStream},
    process::{Child, Stdio},
};

use common::{
    fixture_upstream_yaml,
    process::{ConfigDir, spawn_stdio_on},
};
use serde_json::{Value, json};

/// `O_NONBLOCK` in `/proc/PID/fdinfo`'s octal `flags`.
const O_NONBLOCK: u32 = 0o4000;

struct Gateway {
    child: Child,
    _config: ConfigDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(stdin: Stdio, stdout: Stdio, stderr: Stdio) -> Gateway {
    let config = ConfigDir::new(&format!(
        "logging:\n  level: error\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    Gateway {
        child: spawn_stdio_on(&config, stdin, stdout, stderr),
        _config: config,
    }
}

/// The handshake, then a call, over `input` and `output`: the call's answer must come back.
fn converse(input: &mut impl Write, output: impl Read) {
    let mut lines = BufReader::new(output).lines();
    // Sends `message`; a request's answer is read back (a notification's is `null`).
    let mut exchange = |message: Value| -> Value {
        writeln!(input, "{message}").unwrap();
        input.flush().unwrap();
        if message.get("id").is_none() {
            return Value::Null;
        }
        loop {
            let line = lines.next().expect("a line on stdout").unwrap();
            // Where stdout is also stderr, what is written there for the operator (the
            // start-up progress, the first user's password) comes between the messages.
            if !line.starts_with('{') {
                continue;
            }
            let reply: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("not JSON on stdout ({error}): {line}"));
            if reply.get("id") == message.get("id") {
                return reply;
            }
        }
    };
    let init = exchange(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"}}}));
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    exchange(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let reply = exchange(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"ok": true}}}));
    assert_eq!(
        reply["result"]["structuredContent"]["arguments"]["ok"], true,
        "{reply}"
    );
}

/// Every descriptor of `pid` open on what its descriptor `fd` is open on (`pipe:[N]`,
/// `socket:[N]`), with whether it is non-blocking.
fn open_on_same(pid: u32, fd: u32) -> Vec<(u32, bool)> {
    let target = |fd: &str| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok();
    let wanted = target(&fd.to_string()).expect("the descriptor is open");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if target(&name).as_ref() != Some(&wanted) {
            continue;
        }
        // A descriptor closed meanwhile is not one of them.
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{name}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|line| line.strip_prefix("flags:"))
            .map(|flags| u32::from_str_radix(flags.trim(), 8).unwrap())
            .unwrap();
        found.push((name.parse().unwrap(), flags & O_NONBLOCK != 0));
    }
    found.sort();
    found
}

/// fds 0 and 1 of `pid` are still blocking, as the client made them.
fn assert_standard_fds_blocking(pid: u32) {
    for fd in [0, 1] {
        let open = open_on_same(pid, fd);
        assert!(
            open.contains(&(fd, false)),
            "fd {fd} stays blocking: {open:?}"
        );
    }
}

#[test]
fn pipes_are_reopened_non_blocking_and_the_standard_descriptors_stay_as_they_were() {
    let mut gateway = start(Stdio::piped(), Stdio::piped(), Stdio::null());
    let mut input = gateway.child.stdin.take().unwrap();
    let output = gateway.child.stdout.take().unwrap();
    converse(&mut input, output);
    let pid = gateway.child.id();
    assert_standard_fds_blocking(pid);
    for fd in [0, 1] {
        let open = open_on_same(pid, fd);
        assert!(
            open.iter()
                .any(|&(other, non_blocking)| other > 2 && non_blocking),
            "fd {fd}'s pipe is read on the reactor through a descriptor of its own: {open:?}"
        );
    }
}

#[test]
fn unix_sockets_are_read_and_written_on_the_reactor() {
    let (mut input, their_input) = UnixStream::pair().unwrap();
    let (output, their_output) = UnixStream::pair().unwrap();
    let gateway = start(
        Stdio::from(OwnedFd::from(their_input)),
        Stdio::from(OwnedFd::from(their_output)),
        Stdio::null(),
    );
    converse(&mut input, output);
    let pid = gateway.child.id();
    for fd in [0, 1] {
        let open = open_on_same(pid, fd);
        assert!(
            open.contains(&(fd, true)) && open.iter().any(|&(other, _)| other > 2),
            "fd {fd}'s socket is non-blocking and on the reactor: {open:?}"
        );
    }
}

#[test]
fn a_socket_that_is_also_stderr_is_left_blocking() {
    let (mut input, their_input) = UnixStream::pair().unwrap();
    let (output, their_output) = UnixStream::pair().unwrap();
    let their_stderr = their_output.try_clone().unwrap();
    let gateway = start(
        Stdio::from(OwnedFd::from(their_input)),
        Stdio::from(OwnedFd::from(their_output)),
        Stdio::from(OwnedFd::from(their_stderr)),
    );
    converse(&mut input, output);
    assert_standard_fds_blocking(gateway.child.id());
}
