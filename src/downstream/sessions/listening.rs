//! A client's GET stream, held open by the book so that its session can sleep under it.
//!
//! rmcp ends a session's GET stream with its half of the session. The SDKs' clients open that
//! stream right after `initialize` and keep it, so their sessions could never sleep and kept
//! rmcp's ~80 KB each for as long as they were open. Here the stream the client reads is the
//! book's own channel: a pump forwards rmcp's stream into it while rmcp's half is awake. When
//! the session sleeps the pump ends and the channel stays open; what the session is sent
//! meanwhile (the catalog's `list_changed`, a resource update) goes into it directly, through
//! the [`Listener`] the gateway holds for the sleeping session. When the session wakes, a new
//! pump forwards the new half's stream.
//!
//! The events of the new half are numbered from 0 again: a client that reconnects with a
//! `Last-Event-ID` of the half that slept gets the new half's stream without a replay.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures::{Stream, StreamExt};
use rmcp::{
    model::{ServerJsonRpcMessage, ServerNotification},
    transport::streamable_http_server::session::{ServerSseMessage, SessionId, SessionManager},
};
use tokio::sync::mpsc;

use super::{SessionBook, manager::named_for_client};
use crate::{gateway::Listener, sync::lock};

/// Events waiting for a slow client on its GET stream; past them, notifications of a sleeping
/// session are dropped (as rmcp drops them for a client that does not keep up).
const WAITING: usize = 16;

/// Where the events of a client's GET stream go. Boxed: tokio's channel holds its first block
/// of 32 slots for as long as it is open, which is as long as the client listens, whatever it
/// is sent; a slot of rmcp's event is several words wide, of a box one (scenario 4 measured a
/// listening session 2-3 KB smaller, for one allocation an event).
pub(super) type StreamSender = mpsc::Sender<Box<ServerSseMessage>>;

/// The client's end of a held stream, as the gateway's listener of a sleeping session.
struct Held(StreamSender);

impl Listener for Held {
    fn notify(&self, notification: ServerNotification) -> bool {
        let message = ServerJsonRpcMessage::notification(notification);
        self.0
            .try_send(Box::new(ServerSseMessage::from_message(message)))
            .is_ok()
    }
}

impl SessionBook {
    /// The client's stream for session `id`'s GET, fed by rmcp's `stream` while rmcp's half is
    /// awake, and held open while it sleeps (see the module's comment). It ends when the
    /// session closes, or when the front door stops.
    pub(super) fn listen<S>(
        &self,
        id: &SessionId,
        stream: S,
    ) -> impl Stream<Item = ServerSseMessage> + Send + Sync + 'static + use<S>
    where
        S: Stream<Item = ServerSseMessage> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(WAITING);
        let mark = self.listening(id, sender.clone());
        self.tasks.spawn(pump(stream, sender));
        Listened(receiver)
            .take_until(self.stop.clone().cancelled_owned())
            .map(move |event| {
                let _ = &mark;
                named_for_client(*event)
            })
    }

    /// Session `id` woke: rmcp's new half's GET stream goes to the client that listens, if
    /// one does.
    pub(super) fn listen_again(&self, id: &SessionId) {
        let Some(sender) = self.listener(id) else {
            return;
        };
        let Some(book) = self.me.upgrade() else {
            return;
        };
        let id = id.clone();
        self.tasks.spawn(async move {
            let stream = book.local.create_standalone_stream(&id).await;
            // The pump lasts as long as the session is awake: it holds no book.
            drop(book);
            match stream {
                Ok(stream) => pump(stream, sender).await,
                Err(error) => {
                    tracing::debug!(%error, "a woken session's stream cannot be held on; its client's stream goes on without it");
                }
            }
        });
    }

    /// Where session `id`'s client listens, while it does.
    fn listener(&self, id: &str) -> Option<StreamSender> {
        lock(&self.state)
            .http
            .get(id)?
            .listener
            .clone()
            .filter(|sender| !sender.is_closed())
    }

    /// The gateway's listener for session `id`, which goes to sleep, if its client listens.
    pub(super) fn sleeping_listener(&self, id: &str) -> Option<Arc<dyn Listener>> {
        self.listener(id)
            .map(|sender| Arc::new(Held(sender)) as Arc<dyn Listener>)
    }
}

/// What the client reads of a held stream.
struct Listened(mpsc::Receiver<Box<ServerSseMessage>>);

impl Stream for Listened {
    type Item = Box<ServerSseMessage>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(context)
    }
}

/// Forwards rmcp's `stream` to the client's `sender` until either ends.
async fn pump<S>(stream: S, sender: StreamSender)
where
    S: Stream<Item = ServerSseMessage> + Send,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            event = stream.next() => match event {
                Some(event) => if sender.send(Box::new(event)).await.is_err() {
                    return;
                },
                None => return,
            },
            () = sender.closed() => return,
        }
    }
}
