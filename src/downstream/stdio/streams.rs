//! stdin and stdout as `mcps stdio` reads and writes them: through tokio's reactor, like a
//! network socket, wherever the client's end allows it.
//!
//! tokio's `stdin()` and `stdout()` do every read and every write on its blocking thread
//! pool, so each message crosses to another thread and back: two thread wake-ups per read and
//! two per write, which on a busy machine cost more than the gateway's whole handling of the
//! call. A client that launches `mcps stdio` hands it a pipe (Python's `subprocess`, Go's
//! `os/exec`) or a Unix socket (Node's `child_process`, so most desktop clients and IDEs):
//! both can be made non-blocking and read and written on the runtime's own thread. Anything
//! else (a terminal, a file, `/dev/null`) keeps tokio's way.
//!
//! Non-blocking mode belongs to the open file, not to our descriptor, so it is shared with
//! whoever shares the file. A stream that is also our stderr is left alone: a log line written
//! to a full non-blocking pipe would be lost instead of waiting.

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
    net::{UnixStream, unix::pipe},
};

pub type Input = Box<dyn AsyncRead + Send + Unpin>;
pub type Output = Box<dyn AsyncWrite + Send + Unpin>;

/// The process's stdin and stdout, on the reactor where possible.
pub fn standard_streams() -> (Input, Output) {
    let stderr = identity(io::stderr().as_fd());
    let input = on_reactor(io::stdin().as_fd(), stderr).and_then(|stream| {
        Ok(match stream {
            Some(Stream::Pipe(fd)) => Box::new(pipe::Receiver::from_owned_fd(fd)?) as Input,
            Some(Stream::Socket(fd)) => Box::new(socket(fd)?),
            None => Box::new(tokio::io::stdin()),
        })
    });
    let output = on_reactor(io::stdout().as_fd(), stderr).and_then(|stream| {
        Ok(match stream {
            Some(Stream::Pipe(fd)) => Box::new(pipe::Sender::from_owned_fd(fd)?) as Output,
            Some(Stream::Socket(fd)) => Box::new(socket(fd)?),
            None => Box::new(tokio::io::stdout()),
        })
    });
    // A pipe open the wrong way round, say: tokio's way reports it on first use.
    let input = input.unwrap_or_else(|error| {
        tracing::debug!(%error, "stdin stays on tokio's blocking reads");
        Box::new(tokio::io::stdin())
    });
    let output = output.unwrap_or_else(|error| {
        tracing::debug!(%error, "stdout stays on tokio's blocking writes");
        Box::new(tokio::io::stdout())
    });
    (input, output)
}

/// A duplicate of a standard stream's descriptor that can go on the reactor.
enum Stream {
    Pipe(OwnedFd),
    Socket(OwnedFd),
}

/// Which file a descriptor is open on (device and inode), if it can be told.
fn identity(fd: BorrowedFd<'_>) -> Option<(u64, u64)> {
    let file = File::from(fd.try_clone_to_owned().ok()?);
    let metadata = file.metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// `fd` duplicated, if it is a pipe or a socket that is not also stderr. The duplicate is
/// ours to close; the standard descriptor stays open.
fn on_reactor(fd: BorrowedFd<'_>, stderr: Option<(u64, u64)>) -> io::Result<Option<Stream>> {
    let file = File::from(fd.try_clone_to_owned()?);
    let metadata = file.metadata()?;
    if stderr == Some((metadata.dev(), metadata.ino())) {
        return Ok(None);
    }
    let kind = metadata.file_type();
    let fd = OwnedFd::from(file);
    Ok(if kind.is_fifo() {
        Some(Stream::Pipe(fd))
    } else if kind.is_socket() {
        Some(Stream::Socket(fd))
    } else {
        None
    })
}

fn socket(fd: OwnedFd) -> io::Result<UnixStream> {
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream.set_nonblocking(true)?;
    UnixStream::from_std(stream)
}
