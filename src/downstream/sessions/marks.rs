//! Marks that a streamable HTTP session is busy: a request in flight, a stream open, or its
//! client listening on a GET stream the book holds. While a request or an rmcp stream is held
//! the session does not sleep; while any mark is held it does not idle out.

use std::{
    sync::{Arc, Weak},
    time::Instant,
};

use tokio_util::sync::CancellationToken;

use super::{SessionBook, listening::StreamSender};
use crate::sync::lock;

impl SessionBook {
    /// Marks a request of session `id` in flight until the mark is dropped; `None` when the
    /// book has no such session.
    pub fn in_flight(&self, id: &str) -> Option<InFlight> {
        self.hold(id, true)
    }

    /// Keeps session `id` from sleeping while a message of it is on its way (the mark is
    /// dropped when rmcp has it), without counting the message as a use.
    pub fn arriving(&self, id: &str) -> Option<InFlight> {
        self.hold(id, false)
    }

    fn hold(&self, id: &str, uses: bool) -> Option<InFlight> {
        let mut book = lock(&self.state);
        let session = book.http.get_mut(id)?;
        session.used |= uses;
        session.active = Instant::now();
        session.in_flight += 1;
        Some(InFlight {
            book: self.me.clone(),
            id: Arc::from(id),
            closed: session.closed.clone(),
            held: Held::Request,
        })
    }

    /// Marks a stream of session `id` open until the mark is dropped.
    pub(super) fn stream_open(&self, id: &str) -> Option<InFlight> {
        let mut book = lock(&self.state);
        let session = book.http.get_mut(id)?;
        session.streams += 1;
        Some(InFlight {
            book: self.me.clone(),
            id: Arc::from(id),
            closed: session.closed.clone(),
            held: Held::Stream,
        })
    }

    /// Marks that session `id`'s client listens on a GET stream the book holds (see
    /// `listening`), whose messages go to `sender`, until the mark is dropped.
    pub(super) fn listening(&self, id: &str, sender: StreamSender) -> Option<InFlight> {
        let mut book = lock(&self.state);
        let session = book.http.get_mut(id)?;
        session.listening += 1;
        session.listener = Some(sender);
        Some(InFlight {
            book: self.me.clone(),
            id: Arc::from(id),
            closed: session.closed.clone(),
            held: Held::Listening,
        })
    }

    /// A mark of session `id` is dropped: what it held has ended, and the session's idle
    /// time starts again.
    fn let_go(&self, id: &str, held: Held) {
        let no_longer_listening_asleep = {
            let mut book = lock(&self.state);
            let Some(session) = book.http.get_mut(id) else {
                return;
            };
            let count = match held {
                Held::Request => &mut session.in_flight,
                Held::Stream => &mut session.streams,
                Held::Listening => &mut session.listening,
            };
            *count = count.saturating_sub(1);
            session.active = Instant::now();
            let gone = matches!(held, Held::Listening) && session.listening == 0;
            if gone {
                session.listener = None;
            }
            gone && session.asleep.is_some()
        };
        if no_longer_listening_asleep && let Some(gateway) = &self.gateway {
            gateway.asleep_unheard(Arc::from(id));
        }
    }
}

/// What an HTTP session is marked busy with, until the mark is dropped.
#[derive(Clone, Copy)]
enum Held {
    /// A request in flight (see [`SessionBook::in_flight`]).
    Request,
    /// A stream open outside a request (GET), see [`SessionBook::stream_open`].
    Stream,
    /// A GET stream the book holds, which the session may sleep under (see
    /// [`SessionBook::listening`]).
    Listening,
}

/// A mark that an HTTP session is busy (see the module's comment).
pub struct InFlight {
    book: Weak<SessionBook>,
    id: Arc<str>,
    closed: CancellationToken,
    held: Held,
}

impl InFlight {
    /// Cancelled when the session closes (DELETE, expiry, its credential ended).
    pub fn session_closed(&self) -> &CancellationToken {
        &self.closed
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(book) = self.book.upgrade() {
            book.let_go(&self.id, self.held);
        }
    }
}
