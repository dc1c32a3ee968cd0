//! Seats: a session takes one before it opens and gives it back when it ends, counted
//! against the limits of the whole gateway and of its holder (see the parent's comment).

use std::{cell::RefCell, net::IpAddr, sync::Weak};

use super::SessionBook;
use crate::{maps::shrink, security::Lease, sync::lock};

/// Who a session counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    /// The token (login or API key) that opened it, by id.
    Credential(i64),
    /// The client's address (see [`crate::security::client_network`]), when auth is off.
    Address(IpAddr),
}

/// Why a session could not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Full(usize),
    Principal(usize),
    Peer(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(max) => write!(f, "too many sessions (limits.max_sessions = {max})"),
            Self::Principal(max) => write!(
                f,
                "too many sessions for this credential (limits.max_sessions_per_principal = {max})"
            ),
            Self::Peer(max) => write!(
                f,
                "too many sessions from this address (limits.max_sessions_per_peer = {max})"
            ),
        }
    }
}

/// A taken seat: given back when dropped, unless an HTTP session was opened on it (it is then
/// given back when that session closes).
pub struct Seat {
    book: Weak<SessionBook>,
    pub(super) holder: Holder,
    pub(super) credential: Option<i64>,
    pub(super) lease: Option<Lease>,
    /// Set when an HTTP session took it over.
    pub(super) bound: bool,
}

impl Drop for Seat {
    fn drop(&mut self) {
        if !self.bound
            && let Some(book) = self.book.upgrade()
        {
            book.release(self.holder);
        }
    }
}

tokio::task_local! {
    /// The seat of the `initialize` being served, for [`SessionBook`]'s `create_session`.
    static OPENING: RefCell<Option<Seat>>;
}

/// Serves `request` (an `initialize` that opens a session) with `seat` for that session.
pub async fn opening<F: Future>(seat: Seat, request: F) -> F::Output {
    OPENING.scope(RefCell::new(Some(seat)), request).await
}

/// The seat of the `initialize` being served, if one is and its session has not taken it.
pub(super) fn take_opening() -> Option<Seat> {
    OPENING
        .try_with(|seat| seat.borrow_mut().take())
        .ok()
        .flatten()
}

impl SessionBook {
    /// Takes a seat for `holder`, or says which limit is reached. `lease`, when the session
    /// is opened with a credential, ends it when the credential ends.
    pub fn reserve(
        &self,
        holder: Holder,
        credential: Option<i64>,
        lease: Option<Lease>,
    ) -> Result<Seat, Refusal> {
        let mut book = lock(&self.state);
        if book.taken >= self.limits.max {
            return Err(Refusal::Full(self.limits.max));
        }
        let held = book.by_holder.get(&holder).copied().unwrap_or(0);
        match holder {
            Holder::Credential(_) if held >= self.limits.per_principal => {
                return Err(Refusal::Principal(self.limits.per_principal));
            }
            Holder::Address(_) if held >= self.limits.per_peer => {
                return Err(Refusal::Peer(self.limits.per_peer));
            }
            _ => {}
        }
        book.taken += 1;
        *book.by_holder.entry(holder).or_default() += 1;
        Ok(Seat {
            book: self.me.clone(),
            holder,
            credential,
            lease,
            bound: false,
        })
    }

    /// Seats taken now (open sessions and those opening).
    #[cfg(test)]
    fn taken(&self) -> usize {
        lock(&self.state).taken
    }

    pub(super) fn release(&self, holder: Holder) {
        let mut book = lock(&self.state);
        book.taken = book.taken.saturating_sub(1);
        if let Some(held) = book.by_holder.get_mut(&holder) {
            *held -= 1;
            if *held == 0 {
                book.by_holder.remove(&holder);
            }
        }
        shrink(&mut book.by_holder);
    }

    /// A seat taken regardless of the limits, for a session that opened without one: every
    /// session is counted.
    pub(super) fn seat_regardless(&self) -> Seat {
        let holder = Holder::Address(IpAddr::from([0, 0, 0, 0]));
        let mut book = lock(&self.state);
        book.taken += 1;
        *book.by_holder.entry(holder).or_default() += 1;
        Seat {
            book: self.me.clone(),
            holder,
            credential: None,
            lease: None,
            bound: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use tokio_util::{sync::CancellationToken, task::TaskTracker};

    use super::*;
    use crate::downstream::sessions::SessionLimits;

    fn book(max: usize) -> Arc<SessionBook> {
        SessionBook::new(
            SessionLimits {
                max,
                per_principal: 2,
                per_peer: 3,
                unused_idle: Duration::from_secs(60),
                idle: Duration::from_secs(600),
                sleep: Duration::from_secs(10),
                copy_idle: Duration::from_secs(300),
            },
            None,
            None,
            &TaskTracker::new(),
            &CancellationToken::new(),
        )
    }

    const HERE: Holder = Holder::Address(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[tokio::test]
    async fn seats_are_exact_and_come_back() {
        let book = book(4);
        let seats: Vec<Seat> = (0..3)
            .map(|_| book.reserve(HERE, None, None).unwrap())
            .collect();
        assert_eq!(
            book.reserve(HERE, None, None).err(),
            Some(Refusal::Peer(3)),
            "the address holds its three"
        );
        let key = Holder::Credential(7);
        let fourth = book.reserve(key, Some(7), None).unwrap();
        assert_eq!(
            book.reserve(key, Some(7), None).err(),
            Some(Refusal::Full(4))
        );
        assert_eq!(book.taken(), 4);
        drop(seats);
        drop(fourth);
        assert_eq!(book.taken(), 0);
        assert!(lock(&book.state).by_holder.is_empty());
    }

    #[tokio::test]
    async fn a_credential_has_its_own_limit() {
        let book = book(10);
        let key = Holder::Credential(1);
        let _one = book.reserve(key, Some(1), None).unwrap();
        let _two = book.reserve(key, Some(1), None).unwrap();
        assert_eq!(
            book.reserve(key, Some(1), None).err(),
            Some(Refusal::Principal(2))
        );
        assert!(book.reserve(Holder::Credential(2), Some(2), None).is_ok());
    }
}
