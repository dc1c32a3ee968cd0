//! Which client a request from an upstream (sampling, elicitation, roots) belongs to, and
//! which client its log messages go to.
//!
//! An upstream connection is shared by every client of the gateway, but a server→client
//! request must reach the client whose call caused it, never another. While a request of ours
//! is in flight, its caller is registered here under the id we sent it with. A request from
//! the upstream is then matched to a caller:
//! 1. by the response stream it came on: a streamable HTTP upstream sends the requests a call
//!    causes on that call's own response stream (see [`super::http`]), which names the call;
//! 2. otherwise, when every call in flight on the connection comes from one client, by that
//!    client. When calls of several clients are in flight on a connection that cannot tell
//!    them apart (stdio), the request is refused rather than guessed.
//!
//! A request matched the second way may be none of those calls' at all: an upstream also asks
//! on its own (a `roots/list` after `initialize`, say), and that can happen during a call.
//! So such a request never ends a client's call ([`Caller::answer_unsure`]).

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era servers use it"
)]

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{ClientResult, ErrorCode, LoggingMessageNotificationParam, RequestId, ServerRequest},
};
use tokio_util::sync::CancellationToken;

/// A client that can answer an upstream's request.
pub trait Caller: Send + Sync {
    /// Tells callers apart: the same for every call of one client (one session).
    fn key(&self) -> u64;

    /// Puts `request` to the client and returns its answer. `cancel` fires when the upstream
    /// withdraws the request.
    fn answer(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>>;

    /// [`Caller::answer`] for a request matched to this client only because its calls are the
    /// only ones in flight ([`Matched::OnlyClientInFlight`]), which may be none of theirs. By
    /// default the client is asked all the same; a client that cannot answer it must refuse
    /// it to the upstream without ending its call on that guess.
    fn answer_unsure(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        self.answer(request, cancel)
    }

    /// Passes on a log message the upstream sent while serving this client, if the client
    /// wants messages of its level.
    fn log(&self, _message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }

    /// The client's session, for a notification that outlives the call (it goes on the
    /// session's own stream); `None` for a client without a session (2026-07-28).
    fn session(&self) -> Option<Peer<RoleServer>> {
        None
    }
}

/// How a request from the upstream was matched to its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Matched {
    /// It came on the response stream of one of the caller's calls: it is that call's.
    OnTheCallsStream,
    /// The caller's calls are the only ones in flight on a connection that cannot say more:
    /// it may be one of those calls', or the upstream's own, sent while they ran.
    OnlyClientInFlight,
}

/// The callers of one upstream connection's requests in flight.
#[derive(Default)]
pub struct Callers {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    /// Our requests in flight, by the id we sent them under (ours: a fast hash).
    in_flight: foldhash::HashMap<RequestId, Arc<dyn Caller>>,
    /// The upstream's requests that arrived on the response stream of one of ours: their id
    /// → ours.
    related: HashMap<RequestId, RequestId>,
    /// For each log message on its way from a streamable HTTP upstream, in arrival order: the
    /// request of ours whose response stream carried it (`None`: the session's own stream).
    log_streams: VecDeque<Option<RequestId>>,
    /// The caller of the call that ended last, and when. The upstream's log messages on its
    /// session's own stream and the answers on the calls' streams are not ordered: a message
    /// sent during a call can arrive just after its answer, and is still that client's. Kept
    /// until the next call ends or a log message finds it stale: one caller per upstream.
    last_ended: Option<(Arc<dyn Caller>, Instant)>,
}

/// How long after its call's answer a log message on the session's own stream is taken for
/// that call's client.
const LATE_LOG_GRACE: Duration = Duration::from_secs(1);

/// Log messages noted but never taken (a transport that dropped some) are forgotten past this.
const MAX_PENDING_LOGS: usize = 1024;

impl Callers {
    /// Registers `caller` for our request `ours` until the guard is dropped.
    pub fn register(self: &Arc<Self>, ours: RequestId, caller: Arc<dyn Caller>) -> CallerGuard {
        self.lock().in_flight.insert(ours.clone(), caller);
        CallerGuard {
            callers: self.clone(),
            ours,
        }
    }

    /// Records that the upstream's request `theirs` came on the response stream of `ours`.
    pub fn relate(&self, theirs: RequestId, ours: RequestId) {
        let mut registry = self.lock();
        // Only while ours is in flight: otherwise nothing would ever take the entry out.
        if registry.in_flight.contains_key(&ours) {
            registry.related.insert(theirs, ours);
        }
    }

    /// Records that the next log message on its way came on the response stream of `ours`
    /// (`None`: on no request's stream).
    pub fn relate_log(&self, ours: Option<RequestId>) {
        let mut registry = self.lock();
        if registry.log_streams.len() >= MAX_PENDING_LOGS {
            registry.log_streams.clear();
        }
        registry.log_streams.push_back(ours);
    }

    /// The client a log message that just arrived belongs to: the caller of the request on
    /// whose stream it came, else the one client with calls in flight, else the client whose
    /// call just ended (see [`LATE_LOG_GRACE`]), else nobody (a log message is never sent to
    /// one of several clients it may belong to).
    pub fn log_target(&self) -> Option<Arc<dyn Caller>> {
        let mut registry = self.lock();
        if let Some(Some(ours)) = registry.log_streams.pop_front()
            && let Some(caller) = registry.in_flight.get(&ours)
        {
            return Some(caller.clone());
        }
        if registry
            .last_ended
            .as_ref()
            .is_some_and(|(_, ended)| ended.elapsed() > LATE_LOG_GRACE)
        {
            registry.last_ended = None;
        }
        let mut callers = registry.in_flight.values();
        let Some(first) = callers.next() else {
            return registry
                .last_ended
                .as_ref()
                .map(|(caller, _)| caller.clone());
        };
        if callers.any(|other| other.key() != first.key()) {
            return None;
        }
        Some(first.clone())
    }

    /// Whether no client call is in progress on this upstream: a request from it now (one
    /// right after `initialize`, say) belongs to no client.
    pub fn none_in_flight(&self) -> bool {
        self.lock().in_flight.is_empty()
    }

    /// The client the upstream's request `theirs` belongs to, and how that was told.
    pub fn caller_of(&self, theirs: &RequestId) -> Result<(Arc<dyn Caller>, Matched), ErrorData> {
        let mut registry = self.lock();
        if let Some(ours) = registry.related.remove(theirs)
            && let Some(caller) = registry.in_flight.get(&ours)
        {
            return Ok((caller.clone(), Matched::OnTheCallsStream));
        }
        let mut callers = registry.in_flight.values();
        let Some(first) = callers.next() else {
            return Err(unroutable(NO_CALL));
        };
        if callers.any(|other| other.key() != first.key()) {
            return Err(unroutable(
                "calls of several clients are in progress on this shared upstream connection, \
                 which cannot say which one the request belongs to; give the upstream \
                 `isolation: per-session` or reach it over streamable HTTP",
            ));
        }
        Ok((first.clone(), Matched::OnlyClientInFlight))
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        crate::sync::lock(&self.inner)
    }
}

/// Why a request from an upstream outside any client's call is refused.
pub(super) const NO_CALL: &str = "no client call is in progress on this upstream to send it to (the gateway has no roots, model or user of its own: it asks a client only on behalf of that client's call)";

pub(super) fn unroutable(why: &str) -> ErrorData {
    ErrorData::new(
        ErrorCode::INTERNAL_ERROR,
        format!("the gateway cannot route this request to a client: {why}"),
        None,
    )
}

/// Unregisters a caller when its request ends.
pub struct CallerGuard {
    callers: Arc<Callers>,
    ours: RequestId,
}

impl Drop for CallerGuard {
    fn drop(&mut self) {
        let mut registry = self.callers.lock();
        if let Some(caller) = registry.in_flight.remove(&self.ours) {
            registry.last_ended = Some((caller, Instant::now()));
        }
        let ours = &self.ours;
        if !registry.related.is_empty() {
            registry.related.retain(|_, related| related != ours);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Client(u64);

    impl Caller for Client {
        fn key(&self) -> u64 {
            self.0
        }

        fn answer(
            &self,
            _request: ServerRequest,
            _cancel: CancellationToken,
        ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
            Box::pin(std::future::ready(Ok(ClientResult::empty(()))))
        }
    }

    fn id(n: i64) -> RequestId {
        RequestId::Number(n)
    }

    #[test]
    fn one_client_in_flight_is_the_caller_of_any_request() {
        let callers = Arc::new(Callers::default());
        let _a = callers.register(id(1), Arc::new(Client(7)));
        let _b = callers.register(id(2), Arc::new(Client(7)));
        let (caller, matched) = callers.caller_of(&id(100)).unwrap();
        assert_eq!((caller.key(), matched), (7, Matched::OnlyClientInFlight));
    }

    #[test]
    fn several_clients_in_flight_need_the_stream_to_tell() {
        let callers = Arc::new(Callers::default());
        let _a = callers.register(id(1), Arc::new(Client(7)));
        let _b = callers.register(id(2), Arc::new(Client(8)));
        assert!(callers.caller_of(&id(100)).is_err());
        callers.relate(id(100), id(2));
        callers.relate(id(101), id(1));
        let (caller, matched) = callers.caller_of(&id(100)).unwrap();
        assert_eq!((caller.key(), matched), (8, Matched::OnTheCallsStream));
        let (caller, matched) = callers.caller_of(&id(101)).unwrap();
        assert_eq!((caller.key(), matched), (7, Matched::OnTheCallsStream));
    }

    #[test]
    fn nothing_in_flight_routes_nowhere_and_guards_clean_up() {
        let callers = Arc::new(Callers::default());
        assert!(callers.caller_of(&id(100)).is_err());
        let guard = callers.register(id(1), Arc::new(Client(7)));
        callers.relate(id(100), id(1));
        drop(guard);
        callers.relate(id(101), id(1));
        let registry = callers.lock();
        assert!(registry.in_flight.is_empty() && registry.related.is_empty());
    }

    #[test]
    fn a_log_message_just_after_a_call_is_its_clients_unless_another_call_is_in_flight() {
        let callers = Arc::new(Callers::default());
        drop(callers.register(id(1), Arc::new(Client(7))));
        assert_eq!(callers.log_target().unwrap().key(), 7);
        let other = callers.register(id(2), Arc::new(Client(8)));
        assert_eq!(
            callers.log_target().unwrap().key(),
            8,
            "a call in flight first"
        );
        drop(other);
        assert_eq!(callers.log_target().unwrap().key(), 8);
        callers.lock().last_ended.as_mut().unwrap().1 -= LATE_LOG_GRACE * 2;
        assert!(callers.log_target().is_none());
        assert!(
            callers.lock().last_ended.is_none(),
            "a stale caller is let go"
        );
    }
}
