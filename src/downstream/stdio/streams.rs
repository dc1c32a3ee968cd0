//! stdin and stdout as `mcps stdio` reads and writes them: through tokio's reactor, like a
//! network socket, wherever the client's end allows it.
//!
//! tokio's `stdin()` and `stdout()` do every read and every write on its blocking thread
//! pool, so each message crosses to another thread and back; measured, that cost more than
//! the gateway's whole handling of a call. A client that launches `mcps stdio` hands it
//! either pipes (Python's `subprocess`, Go's `os/exec`) or Unix sockets (Node's
//! `child_process`, so most desktop clients and IDEs), and both can go on the reactor:
//! - pipes by rmcp's `stdio_pipes`, which reopens them on open files of their own so that
//!   non-blocking mode stays ours (on Linux; elsewhere it keeps tokio's way);
//! - sockets here: a socket cannot be reopened, so its open file is put in non-blocking
//!   mode itself. Only the client and we hold it (the upstreams we start get pipes of their
//!   own), unless it is also our stderr: then it is left alone, since a log line written to
//!   a full non-blocking socket would be lost instead of waiting.
//!
//! Anything else (a terminal, a file, `/dev/null`) keeps tokio's way.

use std::{
    fs::File,
    io,
    os::{
        fd::{AsFd, BorrowedFd, OwnedFd},
        unix::fs::{FileTypeExt, MetadataExt},
    },
};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::UnixStream,
};

pub type Input = Box<dyn AsyncRead + Send + Unpin>;
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The process's stdin and stdout, on the reactor where possible. Needs the runtime.
pub fn standard_streams() -> (Input, Output) {
    match sockets() {
        Ok(Some((input, output))) => return (Box::new(input), Box::new(output)),
        Ok(None) => {}
        Err(error) => tracing::debug!(%error, "stdin and stdout are not taken as sockets"),
    }
    let (input, output) = rmcp::transport::stdio_pipes();
    (Box::new(input), Box::new(output))
}

/// stdin and stdout on the reactor, if both are sockets and neither is also stderr.
fn sockets() -> io::Result<Option<(UnixStream, UnixStream)>> {
    let stderr = open_file(io::stderr().as_fd()).ok();
    let [input, output] = [io::stdin().as_fd(), io::stdout().as_fd()].map(open_file);
    let (input, output) = (input?, output?);
    let on_its_own = |(_, metadata): &(File, std::fs::Metadata)| {
        metadata.file_type().is_socket()
            && !stderr
                .as_ref()
                .is_some_and(|(_, stderr)| same_file(metadata, stderr))
    };
    if !(on_its_own(&input) && on_its_own(&output)) {
        return Ok(None);
    }
    Ok(Some((socket(input.0.into())?, socket(output.0.into())?)))
}

/// A duplicate of `fd` (ours to close; the standard descriptor stays open), and what it is.
fn open_file(fd: BorrowedFd<'_>) -> io::Result<(File, std::fs::Metadata)> {
    let file = File::from(fd.try_clone_to_owned()?);
    let metadata = file.metadata()?;
    Ok((file, metadata))
}

fn same_file(one: &std::fs::Metadata, other: &std::fs::Metadata) -> bool {
    (one.dev(), one.ino()) == (other.dev(), other.ino())
}

fn socket(fd: OwnedFd) -> io::Result<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}
