//! The one place that spawns child processes.
//!
//! Every upstream command runs as the leader of its own process group, so the `npx` → `node`
//! or `uvx` → `python` chains that MCP servers are launched through can be signalled as one:
//! SIGTERM to the group, a grace period, then SIGKILL to the group. A group that was never
//! terminated explicitly is SIGKILLed when its [`ChildGroup`] is dropped, and tokio reaps the
//! leader (`kill_on_drop`), so neither zombies nor orphaned grandchildren outlive the gateway.
//!
//! A gateway killed outright cannot do any of that: each child then gets SIGTERM as its
//! parent-death signal, and the [`reaper`], which is told of every group, takes
//! the whole groups down.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{
    sys::{
        resource::{Resource, getrlimit, setrlimit},
        signal::{Signal, killpg},
        wait::{WaitPidFlag, WaitStatus, waitpid},
    },
    unistd::Pid,
};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::reaper;

/// What to run.
#[derive(Debug, Clone)]
pub struct CommandSpec<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a Path>,
    /// Relative `program` paths (with a `/`) and `cwd` are resolved against this directory.
    pub base_dir: &'a Path,
}

/// A spawned child with its three pipes.
pub struct Spawned {
    pub group: ChildGroup,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// A child process and the process group it leads.
#[derive(Debug)]
pub struct ChildGroup {
    child: Child,
    pgid: Pid,
    /// Set once the group has been terminated and the leader reaped.
    finished: bool,
}

/// Spawns `spec` as the leader of a new process group, with piped stdio.
pub fn spawn(spec: &CommandSpec<'_>) -> std::io::Result<Spawned> {
    let program = resolve_program(spec.base_dir, Path::new(spec.program));
    let mut command = Command::new(&program);
    command
        .args(spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let gateway = nix::unistd::getpid();
    let open_files = ORIGINAL_OPEN_FILE_LIMIT.get().copied();
    // SAFETY: between fork and exec the closure makes only async-signal-safe calls (prctl,
    // getppid, kill, setrlimit) and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if let Some((soft, hard)) = open_files {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, soft, hard);
            }
            // Sent when the thread that forked us ends. Every spawn happens on a runtime
            // thread, and those live as long as the gateway.
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
            // The gateway may have died before that took effect.
            if nix::unistd::getppid() != gateway {
                let _ = nix::sys::signal::raise(Signal::SIGTERM);
            }
            Ok(())
        });
    }
    if let Some(cwd) = spec.cwd {
        command.current_dir(spec.base_dir.join(cwd));
    }
    let mut child = command.spawn().map_err(|error| {
        std::io::Error::new(
            error.kind(),
            format!("cannot spawn {:?}: {error}", spec.program),
        )
    })?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("child exited before its pid was read"))?;
    // The pipes were all requested as `piped` just above, so they are present.
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("child pipes missing"));
    };
    let pgid = Pid::from_raw(i32::try_from(pid).map_err(std::io::Error::other)?);
    watch(pgid);
    Ok(Spawned {
        group: ChildGroup {
            child,
            pgid,
            finished: false,
        },
        stdin,
        stdout,
        stderr,
    })
}

/// The program named `mcps` is the running gateway's own binary (its `mcps hello` demo server,
/// say), wherever it is installed and whatever the `PATH` of whoever started it.
const OWN_BINARY: &str = "mcps";

/// A relative program path with a directory component (`./server`, `bin/server`) is taken
/// from `base`; a bare program name is left for `PATH` lookup, except [`OWN_BINARY`].
fn resolve_program(base: &Path, path: &Path) -> PathBuf {
    if path == Path::new(OWN_BINARY)
        && let Ok(own) = std::env::current_exe()
    {
        return own;
    }
    let has_dir = path.components().count() > 1;
    if path.is_relative() && has_dir {
        base.join(path)
    } else {
        path.to_owned()
    }
}

/// The open-file limit this process started with, given back to its children.
static ORIGINAL_OPEN_FILE_LIMIT: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Raises this process's soft limit on open files to the hard one: every client connection
/// is a descriptor, and the common soft default (1,024) is far below
/// `limits.max_connections`. Upstreams are started with the limit this process had, as a
/// program that walks every possible descriptor expects.
pub fn raise_open_file_limit() {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let _ = ORIGINAL_OPEN_FILE_LIMIT.set((soft, hard));
    if soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::debug!(%error, "cannot raise the open-file limit");
    }
}

/// Makes this process the reaper of its orphaned descendants (Linux `PR_SET_CHILD_SUBREAPER`):
/// a grandchild whose parent (an upstream process) died is re-parented to us rather than to
/// PID 1, which in a container often reaps nothing, so [`ChildGroup::terminate`] can reap it
/// instead of leaving a zombie.
pub fn adopt_orphans() {
    if let Err(error) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::debug!(%error, "cannot become a child subreaper; orphans go to PID 1");
    }
}

impl ChildGroup {
    /// The leader's process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw().unsigned_abs()
    }

    /// Waits for the leader to exit on its own.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL to the group.
    /// The group is SIGKILLed even when the leader exits in time, so a grandchild that ignores
    /// SIGTERM is not left behind.
    pub async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        if self.finished {
            return None;
        }
        let _ = killpg(self.pgid, Signal::SIGTERM);
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => None,
        };
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let status = match status {
            Some(status) => Some(status),
            None => self.child.wait().await.ok(),
        };
        self.finished = true;
        self.reap_adopted().await;
        release(self.pgid);
        status
    }

    /// Reaps the group's members that were orphaned and adopted by us (see [`adopt_orphans`]),
    /// now that they are killed. Only this group's: the leader is already reaped by tokio,
    /// and every other child of ours is in a group of its own.
    async fn reap_adopted(&self) {
        let group = Pid::from_raw(-self.pgid.as_raw());
        for _ in 0..REAP_TRIES {
            match waitpid(group, Some(WaitPidFlag::WNOHANG)) {
                // One reaped; there may be more.
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => continue,
                // Still dying: SIGKILL is sent, give it a moment.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                // No child of ours left in the group.
                Err(_) => return,
            }
        }
    }
}

/// How often [`ChildGroup::reap_adopted`] looks (10 ms apart) before it leaves the rest to
/// the next reaper.
const REAP_TRIES: usize = 100;

impl Drop for ChildGroup {
    fn drop(&mut self) {
        if !self.finished {
            // Synchronous and cheap; `kill_on_drop` then has tokio reap the leader.
            let _ = killpg(self.pgid, Signal::SIGKILL);
            release(self.pgid);
        }
    }
}

/// The process groups spawned and not yet terminated, for [`kill_every_group`].
static LIVE_GROUPS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// The live groups; a panic elsewhere while holding the lock leaves the list itself valid.
fn live_groups() -> std::sync::MutexGuard<'static, Vec<i32>> {
    crate::sync::lock(&LIVE_GROUPS)
}

/// Counts `pgid` as live, here and with the reaper.
fn watch(pgid: Pid) {
    live_groups().push(pgid.as_raw());
    reaper::watch(pgid.as_raw());
}

/// `pgid` is terminated: neither we nor the reaper need signal it again.
fn release(pgid: Pid) {
    live_groups().retain(|live| *live != pgid.as_raw());
    reaper::release(pgid.as_raw());
}

/// SIGKILLs every process group still alive, synchronously: for leaving at once (a second
/// SIGTERM or SIGINT) without a child left running.
pub fn kill_every_group() {
    for pgid in live_groups().iter() {
        let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_left_for_path_lookup_and_relative_paths_join_the_base() {
        let base = Path::new("/etc/mcps");
        assert_eq!(
            resolve_program(base, Path::new("npx")),
            PathBuf::from("npx")
        );
        assert_eq!(
            resolve_program(base, Path::new("bin/server")),
            PathBuf::from("/etc/mcps/bin/server")
        );
        assert_eq!(
            resolve_program(base, Path::new("/usr/bin/env")),
            PathBuf::from("/usr/bin/env")
        );
    }
}
