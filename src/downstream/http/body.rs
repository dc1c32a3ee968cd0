//! Reading a request body within its limits: its size (`limits.max_body_bytes`), its time
//! (see [`super::super::connection::TimedBody`]), and, for a response that streams, the life
//! of the credential it was opened with; and which method it carries, where that decides.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::RequestBody;
use crate::{downstream::connection::BodyTimedOut, security::Lease};

/// `body`, cut off when `lease` ends: an event stream (a session's GET stream, a
/// `subscriptions/listen`, a long call's progress) stops when its credential does.
pub(super) fn until_lease_ends<B>(
    body: B,
    lease: Lease,
) -> impl hyper::body::Body<Data = Bytes, Error = B::Error> + Send + 'static
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
{
    use futures::StreamExt;
    let ended = async move { lease.ended().await };
    http_body_util::StreamBody::new(http_body_util::BodyStream::new(body).take_until(ended))
}

/// The JSON-RPC message in `body` if it is one of `method`. Most bodies are something else:
/// only those that name it are read.
pub(super) fn message_of(body: &[u8], method: &str) -> Option<serde_json::Value> {
    memchr::memmem::find(body, method.as_bytes())?;
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|message| message["method"] == method)
}

pub(super) enum BodyError {
    TooLarge,
    TimedOut(BodyTimedOut),
    Read(Box<dyn std::error::Error + Send + Sync>),
}

/// Collects a body of at most `max` bytes, counting as it reads (the `Content-Length` may be
/// absent or wrong).
pub(super) async fn read_body(body: &mut RequestBody, max: usize) -> Result<Bytes, BodyError> {
    let mut collected = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| match error.downcast::<BodyTimedOut>() {
            Ok(timed_out) => BodyError::TimedOut(*timed_out),
            Err(other) => BodyError::Read(other),
        })?;
        if let Some(data) = frame.data_ref() {
            if collected.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            collected.extend_from_slice(data);
        }
    }
    Ok(collected.freeze())
}

/// Reads and drops the rest of a refused body, so the client (still sending) gets to read our
/// 413 instead of a reset connection. Nothing is kept, and the effort is bounded: at most
/// [`DISCARD_FACTOR`] times the body limit, for at most [`DISCARD_TIME`]; past that the
/// connection is simply closed.
pub(super) async fn discard(mut body: RequestBody, max_body_bytes: usize) {
    let budget = max_body_bytes.saturating_mul(DISCARD_FACTOR);
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, Bytes::len);
            if seen > budget {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
}

const DISCARD_FACTOR: usize = 16;
const DISCARD_TIME: Duration = Duration::from_secs(2);
