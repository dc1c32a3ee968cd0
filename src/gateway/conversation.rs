//! A 2026-07-28 client calling a session-era upstream that asks for input mid-call.
//!
//! The upstream sends a real request (elicitation, sampling, roots) and waits for the answer
//! while its call stays open. A 2026-07-28 client cannot receive requests: it expects the call
//! to end with an `input_required` result and to be retried with the answers. So the gateway
//! drives the upstream call from the client's request, and when the upstream asks, moves it
//! to a task of its own, parks it there and answers the client's call with `input_required`.
//! The `requestState` it gives the client names the gateway and the parked call, and is signed
//! (HMAC-SHA256, bound to that gateway and to the method and the name called, with a key made
//! at start-up or, for gateways that share a registry, derived from its `secret_key`), so a
//! forged or altered state, or one replayed against another tool, is refused by any of them.
//! A retry that lands on another gateway of the same registry is passed to the one that
//! parked the call (see [`super::parked_elsewhere`]). The client's retry resumes the
//! parked call: the answers go to the upstream's waiting requests, and the gateway waits again
//! for the call's result or its next question. Each state resumes once; a parked call nobody
//! resumes within the upstream's call deadline is cancelled upstream.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era upstreams log to 2026-07-28 clients through a bridged call"
)]

mod caller;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, Peer, RoleClient,
    model::{
        ClientCapabilities, ClientRequest, ClientResult, InputRequests, InputRequiredResult,
        InputResponses, LoggingMessageNotificationParam, RequestStateCodec, SealOptions,
        ServerRequest, ServerResult,
    },
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use caller::{ConversationCaller, decode_answer};

use super::{
    client_requests::into_input_request,
    forward::{Origin, send},
    parked_elsewhere::Relay,
};
use crate::{error::GatewayError, registry::this_gateway, upstream::Upstream};

/// What the upstream call's task reports.
enum Event {
    /// The upstream asks the client something; `reply` takes the answer.
    Input(Pending),
    /// A log message of the call, for whichever of the client's requests is waiting on it.
    Log(LoggingMessageNotificationParam),
    /// The upstream asked for something the client did not declare it can do: the client's
    /// request ends with this error (-32021).
    Missing(ErrorData),
    /// The call ended.
    Done(Result<Reply, GatewayError>),
}

/// An upstream's result: as the JSON text it wrote (a call on its lane) or typed (a call
/// through rmcp), whichever the call came back as; each door turns it into what it sends.
pub enum Reply {
    Raw(Box<serde_json::value::RawValue>),
    Typed(Box<ServerResult>),
}

impl Reply {
    /// The result as JSON text.
    pub fn into_raw(self) -> Result<Box<serde_json::value::RawValue>, GatewayError> {
        match self {
            Self::Raw(raw) => Ok(raw),
            Self::Typed(result) => {
                serde_json::value::to_raw_value(&result).map_err(|error| GatewayError::Internal {
                    reason: format!("a result does not serialize: {error}"),
                })
            }
        }
    }

    /// The result typed, for the doors that answer through rmcp.
    pub fn into_typed(self, upstream: &Upstream) -> Result<ServerResult, GatewayError> {
        match self {
            Self::Typed(result) => Ok(*result),
            Self::Raw(raw) => serde_json::from_str(raw.get())
                .map_err(|error| crate::upstream::unreadable(upstream, &error)),
        }
    }
}

/// Starts a call upstream on behalf of a conversation, with the conversation's origin.
pub type Starter =
    Box<dyn FnOnce(Origin) -> BoxFuture<'static, Result<Reply, GatewayError>> + Send>;

struct Pending {
    request: ServerRequest,
    reply: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

/// An upstream call in progress. The client's request that starts it drives it, on the
/// request's own task, as long as the upstream asks nothing (most calls); when the call must
/// wait parked for the client's answers, it moves to a task of its own.
struct Call {
    /// The call, while the client's request drives it.
    running: Option<BoxFuture<'static, Result<Reply, GatewayError>>>,
    /// Where the call's own task reports its end, taken when the call moves there.
    done: Option<mpsc::Sender<Event>>,
    events: mpsc::Receiver<Event>,
    /// Cancels the upstream call when the conversation is dropped unfinished.
    _cancel: DropGuard,
}

impl Call {
    /// What the call reports next: a question or log message of the upstream's, or its end.
    /// `None` if its task ended without an answer.
    async fn next(&mut self) -> Option<Event> {
        let Some(running) = &mut self.running else {
            return self.events.recv().await;
        };
        let outcome = tokio::select! {
            // What the upstream said before it answered goes first.
            biased;
            event = self.events.recv() => return event,
            outcome = running => outcome,
        };
        self.running = None;
        Some(Event::Done(outcome))
    }

    /// Moves the call to a task of its own, where it waits, parked, for the client's
    /// answers and reports its end.
    fn detach(&mut self) {
        if let (Some(running), Some(done)) = (self.running.take(), self.done.take()) {
            tokio::spawn(async move {
                let _ = done.send(Event::Done(running.await)).await;
            });
        }
    }
}

/// A call waiting for the client's answers.
struct Parked {
    call: Call,
    upstream: Arc<Upstream>,
    questions: Vec<(String, Pending)>,
    expires: Instant,
}

/// The parked calls, and the key that signs their states.
pub struct Conversations {
    /// Signs states with a key made at start-up, until gateways share one (`shared`).
    codec: RequestStateCodec,
    /// Signs states with a key every gateway of the registry derives alike, so that any of
    /// them can tell a state one of them issued from a forged one before passing it on.
    shared: OnceLock<RequestStateCodec>,
    parked: Mutex<HashMap<u64, Parked>>,
    next: AtomicU64,
    /// Where retries of calls parked on other gateways go, when gateways share a registry.
    relay: OnceLock<Arc<Relay>>,
}

/// Between the tag of the gateway that parked a call and the sealed state, in a
/// `requestState` (the sealed part is Base64url, which has no `~`).
const TAGGED: char = '~';

impl Conversations {
    pub fn new() -> Self {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).expect("the operating system's random source");
        Self {
            codec: RequestStateCodec::try_new(secret.to_vec())
                .expect("a 32-byte key is long enough"),
            shared: OnceLock::new(),
            parked: Mutex::default(),
            next: AtomicU64::new(1),
            relay: OnceLock::new(),
        }
    }

    /// Signs states with `key`, which every gateway of the registry has, and passes retries
    /// of calls parked on other gateways through `relay`.
    pub(super) fn relay_through(&self, relay: Arc<Relay>, key: [u8; 32]) {
        if let Ok(codec) = RequestStateCodec::try_new(key.to_vec()) {
            let _ = self.shared.set(codec);
        }
        let _ = self.relay.set(relay);
    }

    fn codec(&self) -> &RequestStateCodec {
        self.shared.get().unwrap_or(&self.codec)
    }

    /// The gateway that issued `state` for `binding`, and the parked call it names there;
    /// refused when no gateway of this registry issued it for this request, or it expired.
    fn opened<'a>(&self, state: &'a str, binding: &str) -> Result<(&'a str, u64), GatewayError> {
        let forged = || refused("it was not issued by this gateway for this request");
        let (tag, sealed) = state.split_once(TAGGED).ok_or_else(forged)?;
        let opened = self
            .codec()
            .open_with(sealed, bound(tag, binding).as_bytes())
            .map_err(|_| forged())?;
        let key = <[u8; 8]>::try_from(opened.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| refused("it is malformed"))?;
        Ok((tag, key))
    }

    /// Starts `request` on `upstream` for a 2026-07-28 client, or resumes the parked call its
    /// `requestState` names. `binding` names what is called (method and name), so a state
    /// cannot be replayed against something else.
    pub async fn forward(
        &self,
        upstream: &Arc<Upstream>,
        peer: &Peer<RoleClient>,
        request: ClientRequest,
        retry: super::client_requests::Retry,
        origin: &Origin,
        binding: &str,
    ) -> Result<ServerResult, GatewayError> {
        let upstream_of_call = upstream.clone();
        let peer = peer.clone();
        let starter: Starter = Box::new(move |call_origin| {
            Box::pin(async move {
                send(&upstream_of_call, &peer, request, &call_origin)
                    .await
                    .map(|result| Reply::Typed(Box::new(result)))
            })
        });
        self.converse(upstream, starter, retry, origin, binding)
            .await?
            .into_typed(upstream)
    }

    /// The same for a request of any form: `start` sends it when it is not a retry.
    pub async fn converse(
        &self,
        upstream: &Arc<Upstream>,
        start: Starter,
        retry: super::client_requests::Retry,
        origin: &Origin,
        binding: &str,
    ) -> Result<Reply, GatewayError> {
        let capabilities = origin.capabilities.clone().unwrap_or_default();
        let answers = retry.input_responses.unwrap_or_default();
        let call = match retry.request_state {
            Some(state) => {
                let (tag, key) = self.opened(&state, binding)?;
                if tag != this_gateway() {
                    let relay = self.relay.get().ok_or_else(|| {
                        refused("it was issued by another gateway, and this one shares no registry with it")
                    })?;
                    let (tag, within) = (tag.to_owned(), upstream.call_timeout());
                    return relay
                        .resume(&tag, state, answers, binding, upstream.name(), within)
                        .await;
                }
                self.resume(key, answers)?.0
            }
            None => self.start(start, origin, capabilities),
        };
        self.drive(call, upstream, origin, binding).await
    }

    /// Resumes the call parked here that a retry passed on by another gateway names.
    pub(super) async fn resume_here(
        &self,
        state: &str,
        answers: InputResponses,
        binding: &str,
    ) -> Result<Reply, GatewayError> {
        let (tag, key) = self.opened(state, binding)?;
        if tag != this_gateway() {
            return Err(refused(
                "it was not issued by this gateway for this request",
            ));
        }
        let (call, upstream) = self.resume(key, answers)?;
        // The retry's client is on the other gateway: its cancellation and the call's log
        // messages stay there.
        self.drive(call, &upstream, &Origin::default(), binding)
            .await
    }

    fn start(
        &self,
        start: Starter,
        origin: &Origin,
        capabilities: Arc<ClientCapabilities>,
    ) -> Call {
        let (events, receiver) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let caller = ConversationCaller {
            // Conversation keys live above session numbers so the two never meet.
            key: self.next.fetch_add(1, Ordering::Relaxed) | 1 << 63,
            events: events.clone(),
            capabilities,
        };
        let call_origin = Origin {
            cancel: cancel.clone(),
            progress: origin.progress.clone(),
            caller: Some(Arc::new(caller)),
            stateless: false,
            capabilities: None,
            connections: None,
            log_level: None,
            client: origin.client.clone(),
            principal: origin.principal.clone(),
            view: origin.view.clone(),
            credential: origin.credential.clone(),
        };
        Call {
            running: Some(start(call_origin)),
            done: Some(events),
            events: receiver,
            _cancel: cancel.drop_guard(),
        }
    }

    /// Takes parked call `key` (from an opened state) and hands it the client's answers.
    fn resume(
        &self,
        key: u64,
        mut answers: InputResponses,
    ) -> Result<(Call, Arc<Upstream>), GatewayError> {
        let parked = self
            .take_parked(key)
            .ok_or_else(|| refused("it was already used or has expired"))?;
        for (name, question) in parked.questions {
            let answer = match answers.remove(&name) {
                Some(answer) => decode_answer(&question.request, answer),
                None => Err(ErrorData::invalid_params(
                    format!("the client sent no answer for input request {name:?}"),
                    None,
                )),
            };
            let _ = question.reply.send(answer);
        }
        Ok((parked.call, parked.upstream))
    }

    /// Waits for the call's result or its next questions, which park it again.
    async fn drive(
        &self,
        mut call: Call,
        upstream: &Arc<Upstream>,
        origin: &Origin,
        binding: &str,
    ) -> Result<Reply, GatewayError> {
        let mut questions = loop {
            let event = tokio::select! {
                event = call.next() => event,
                () = origin.cancel.cancelled() => return Err(GatewayError::Cancelled),
            };
            match event {
                Some(Event::Done(outcome)) => {
                    return said_before(call, upstream, origin, outcome).await;
                }
                Some(Event::Input(question)) => break vec![question],
                Some(Event::Log(message)) => log(origin, message).await,
                Some(Event::Missing(error)) => return Err(missing(upstream, error)),
                None => {
                    return Err(GatewayError::UpstreamFailed {
                        upstream: upstream.name().to_owned(),
                        reason: "the call ended without an answer".into(),
                    });
                }
            }
        };
        // Questions the upstream asked together go to the client together.
        while let Ok(event) = call.events.try_recv() {
            match event {
                Event::Input(question) => questions.push(question),
                Event::Log(message) => log(origin, message).await,
                Event::Missing(error) => return Err(missing(upstream, error)),
                Event::Done(outcome) => return outcome,
            }
        }
        let mut requests = InputRequests::new();
        let questions: Vec<(String, Pending)> = questions
            .into_iter()
            .enumerate()
            .map(|(n, question)| (format!("input-{n}"), question))
            .collect();
        for (name, question) in &questions {
            if let Some(request) = into_input_request(question.request.clone()) {
                requests.insert(name.clone(), request);
            }
        }
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let sealed = self.codec().seal_with(
            &key.to_be_bytes(),
            &SealOptions::new()
                .associated_data(bound(this_gateway(), binding).as_bytes())
                .ttl(upstream.call_timeout()),
        );
        let state = format!("{}{TAGGED}{sealed}", this_gateway());
        call.detach();
        let parked = Parked {
            call,
            upstream: upstream.clone(),
            questions,
            expires: Instant::now() + upstream.call_timeout(),
        };
        self.forget_expired().insert(key, parked);
        let mut result = InputRequiredResult::from_request_state(state);
        result.input_requests = Some(requests);
        Ok(Reply::Typed(Box::new(ServerResult::InputRequiredResult(
            result,
        ))))
    }

    /// The parked call `key` names, if it has not expired (each is taken once).
    fn take_parked(&self, key: u64) -> Option<Parked> {
        self.forget_expired().remove(&key)
    }

    /// The book of parked calls, without the expired ones (dropping one cancels its
    /// upstream call).
    fn forget_expired(&self) -> MutexGuard<'_, HashMap<u64, Parked>> {
        let mut book = self.lock();
        let now = Instant::now();
        book.retain(|_, parked| parked.expires > now);
        book
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Parked>> {
        crate::sync::lock(&self.parked)
    }
}

/// What a state is bound to: the gateway that issued it and what it was issued for.
fn bound(tag: &str, binding: &str) -> String {
    format!("{tag}\n{binding}")
}

fn refused(reason: &str) -> GatewayError {
    GatewayError::InvalidRequestState {
        reason: reason.to_owned(),
    }
}

/// `outcome`, after what the upstream said before it answered (the call ended on the
/// client's request's task, and what it said may still be queued): its log messages go to
/// the client, and a request the client cannot take ends the call with that error.
async fn said_before(
    mut call: Call,
    upstream: &Upstream,
    origin: &Origin,
    outcome: Result<Reply, GatewayError>,
) -> Result<Reply, GatewayError> {
    while let Ok(event) = call.events.try_recv() {
        match event {
            Event::Log(message) => log(origin, message).await,
            Event::Missing(error) => return Err(missing(upstream, error)),
            // Too late: the call has its answer.
            Event::Input(_) | Event::Done(_) => {}
        }
    }
    outcome
}

/// The client's request ends with `error`; dropping the call cancels it upstream.
fn missing(upstream: &Upstream, error: ErrorData) -> GatewayError {
    GatewayError::UpstreamError {
        upstream: upstream.name().to_owned(),
        error,
    }
}

/// Passes a log message of the call to the client's request now waiting on it, which sends it
/// on its response stream if the client asked for log messages.
async fn log(origin: &Origin, message: LoggingMessageNotificationParam) {
    if let Some(caller) = &origin.caller {
        caller.log(message).await;
    }
}
