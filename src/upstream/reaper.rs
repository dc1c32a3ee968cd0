//! The reaper: a small process that outlives a killed gateway just long enough to take every
//! upstream process group with it.
//!
//! A gateway that stops cleanly terminates its upstreams' process groups itself (see
//! [`super::process`]). One that is killed outright (`kill -9`, the OOM killer) cannot: its
//! direct children then get their parent-death signal, but what they started themselves (the
//! `node` behind `npx`, a `sleep` an `sh -c` left in the background, a server's own workers)
//! would live on under PID 1.
//!
//! So at start-up, before the gateway has a thread (a fork is only sound then), `mcps` forks
//! this watcher. The gateway keeps the write end of a pipe and writes one record per process
//! group it starts or finishes; the reaper keeps the set. When the gateway dies, however it
//! dies, the kernel closes the pipe: the reaper reads end-of-file, sends SIGTERM to every group
//! still in its set, gives them [`GRACE`] and SIGKILLs what is left, then exits. On a clean
//! stop the set is empty by then and it simply exits.
//!
//! The reaper ignores the signals that ask a process to stop (a Ctrl-C in the terminal, a
//! `pkill mcps`): its job is to be the last one standing, and it ends on its own right after
//! the gateway. It sits in a process group of its own, holds none of the gateway's stdio (a
//! client reading `mcps stdio`'s stdout sees end-of-file when the gateway dies), and is named
//! `mcps-reaper` in `ps`.
//!
//! A descendant that leaves its process group (`setsid`, a daemon's double fork) is out of
//! its reach; MCP servers do not do that.

use std::{
    collections::HashSet,
    io::{Read, Write},
    os::fd::OwnedFd,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    fcntl::OFlag,
    sys::signal::{SigHandler, Signal, killpg, signal},
    unistd::{ForkResult, Pid, fork, pipe2, setpgid},
};

use crate::sync::lock;

/// How long the groups get between SIGTERM and SIGKILL once the gateway is gone.
const GRACE: Duration = Duration::from_millis(500);

/// The write end of the pipe to the reaper, once it runs.
static PIPE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// One record: an operation byte and a process group id.
const RECORD: usize = 5;
const WATCH: u8 = b'+';
const RELEASE: u8 = b'-';

/// Forks the reaper. Call it once, first thing, while this process has one thread: the child
/// of a fork in a threaded process may only make async-signal-safe calls, and the reaper
/// allocates.
pub fn start() -> std::io::Result<()> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
    // SAFETY: the caller guarantees this process has a single thread (it runs before the
    // runtime, the log writer or anything else starts one), so the child may do anything.
    match unsafe { fork() }? {
        ForkResult::Child => {
            drop(write);
            reap_after_parent(read)
        }
        ForkResult::Parent { .. } => {
            drop(read);
            let _ = PIPE.set(Mutex::new(std::fs::File::from(write)));
            Ok(())
        }
    }
}

/// Tells the reaper about a new process group (no-op when there is no reaper).
pub(super) fn watch(pgid: i32) {
    tell(WATCH, pgid);
}

/// Tells the reaper a process group was terminated and reaped by the gateway itself.
pub(super) fn release(pgid: i32) {
    tell(RELEASE, pgid);
}

fn tell(operation: u8, pgid: i32) {
    let Some(pipe) = PIPE.get() else { return };
    let mut record = [0u8; RECORD];
    record[0] = operation;
    record[1..].copy_from_slice(&pgid.to_le_bytes());
    // Five bytes: far below the pipe's buffer, and the reaper reads as they come, so this
    // never blocks for long. A failed write means the reaper is gone; nothing to do.
    if let Err(error) = lock(pipe).write_all(&record) {
        tracing::debug!(%error, "the reaper is gone; a killed gateway would leave processes");
    }
}

/// The reaper's life: follow the gateway's records until the pipe closes, then clean up.
fn reap_after_parent(pipe: OwnedFd) -> ! {
    detach();
    let mut pipe = std::fs::File::from(pipe);
    let mut groups = HashSet::new();
    let mut buffer = Vec::with_capacity(RECORD * 64);
    let mut chunk = [0u8; RECORD * 64];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let whole = buffer.len() - buffer.len() % RECORD;
        for record in buffer[..whole].chunks_exact(RECORD) {
            let pgid = i32::from_le_bytes([record[1], record[2], record[3], record[4]]);
            match record[0] {
                WATCH => groups.insert(pgid),
                _ => groups.remove(&pgid),
            };
        }
        buffer.drain(..whole);
    }
    terminate(&groups);
    std::process::exit(0)
}

/// Leaves the gateway's process group and stdio, and ignores requests to stop.
fn detach() {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    for stop in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        let _ = unsafe { signal(stop, SigHandler::SigIgn) };
    }
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
    let _ = nix::sys::prctl::set_name(c"mcps-reaper");
}

/// SIGTERM to every group, up to [`GRACE`] for them to go, then SIGKILL to what is left.
fn terminate(groups: &HashSet<i32>) {
    if groups.is_empty() {
        return;
    }
    let groups: Vec<Pid> = groups.iter().map(|pgid| Pid::from_raw(*pgid)).collect();
    for group in &groups {
        let _ = killpg(*group, Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && groups.iter().any(|group| alive(*group)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for group in &groups {
        let _ = killpg(*group, Signal::SIGKILL);
    }
}

/// Whether any process of `group` is left (a zombie counts until its new parent reaps it).
fn alive(group: Pid) -> bool {
    killpg(group, None) != Err(Errno::ESRCH)
}
