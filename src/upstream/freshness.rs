//! How fresh an upstream's lists are, by the hints it gave with them (SEP-2549, 2026-07-28:
//! `ttlMs`, `cacheScope`), and re-listing them once stale.
//!
//! The gateway's catalog is its cache of every upstream's lists. A `list_changed` re-lists
//! at once (see `Upstream::serve`). A list given a positive `ttlMs` is also re-listed when
//! a client needs it after that time (the SEP: a client re-fetches a stale list when it needs
//! it, rather than polling); lists that come back the same change nothing but their
//! freshness. A `ttlMs` of 0, or none (session-era servers), is the SEP's "the client MAY
//! re-fetch every time": the gateway keeps to `list_changed` and reconnections for those,
//! as before the hints, and tells its clients the list is stale at once.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::model::CacheScope;

use super::{Phase, Upstream, UpstreamState};

/// The lists an upstream gives, each with its own hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    Templates,
}

/// The hints of one list, over all its pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// How long it may be served as fresh after it was fetched: 0 when it said 0 or nothing.
    pub ttl: Duration,
    /// `cacheScope: private` on any page (absent is `public`, as the schema says).
    pub private: bool,
}

impl Hint {
    /// The hint of a merged list.
    pub fn of(ttl_ms: Option<u64>, scope: Option<CacheScope>) -> Self {
        Self {
            ttl: Duration::from_millis(ttl_ms.unwrap_or(0)),
            private: scope == Some(CacheScope::Private),
        }
    }
}

/// The hints an upstream gave with its lists, and when they were fetched.
#[derive(Debug, Clone)]
pub struct ListHints {
    pub fetched: Instant,
    /// `None` for a list it does not have (its capabilities do not name it).
    pub tools: Option<Hint>,
    pub prompts: Option<Hint>,
    pub resources: Option<Hint>,
    pub templates: Option<Hint>,
}

impl Default for ListHints {
    fn default() -> Self {
        Self {
            fetched: Instant::now(),
            tools: None,
            prompts: None,
            resources: None,
            templates: None,
        }
    }
}

impl ListHints {
    pub fn get(&self, kind: ListKind) -> Option<Hint> {
        match kind {
            ListKind::Tools => self.tools,
            ListKind::Prompts => self.prompts,
            ListKind::Resources => self.resources,
            ListKind::Templates => self.templates,
        }
    }

    /// How long list `kind` stays fresh from `now`: `None` when it has no such list.
    pub fn remaining(&self, kind: ListKind, now: Instant) -> Option<Hint> {
        let hint = self.get(kind)?;
        let age = now.saturating_duration_since(self.fetched);
        Some(Hint {
            ttl: hint.ttl.saturating_sub(age),
            ..hint
        })
    }

    /// When the first of its lists that had a positive ttl goes stale; `None` when none had.
    fn stale_at(&self) -> Option<Instant> {
        [self.tools, self.prompts, self.resources, self.templates]
            .into_iter()
            .flatten()
            .map(|hint| hint.ttl)
            .filter(|ttl| !ttl.is_zero())
            .min()
            .map(|ttl| self.fetched + ttl)
    }

    /// The same, no list fresh for longer than `max_ttl`.
    pub(super) fn capped(mut self, max_ttl: Duration) -> Self {
        for hint in [
            &mut self.tools,
            &mut self.prompts,
            &mut self.resources,
            &mut self.templates,
        ]
        .into_iter()
        .flatten()
        {
            hint.ttl = hint.ttl.min(max_ttl);
        }
        self
    }

    pub fn is_stale(&self) -> bool {
        self.stale_at().is_some_and(|at| at <= Instant::now())
    }
}

impl Upstream {
    /// Whether its lists have caught up with every list change it announced (see
    /// `list_changes`).
    pub fn lists_settled(&self) -> bool {
        self.list_changes.is_settled()
    }

    /// Once its lists have caught up with the list changes it announced so far, or after
    /// [`SETTLE_MOST`](super::list_changes::SETTLE_MOST).
    pub async fn settle_lists(&self) {
        self.list_changes
            .settled(super::list_changes::SETTLE_MOST)
            .await;
    }

    /// The hints of the lists in its catalog entry.
    pub fn list_hints(&self) -> Arc<ListHints> {
        self.list_hints.load_full()
    }

    /// Re-lists what it offers if a list it gave a positive ttl for has gone stale, within
    /// its start deadline; one re-list at a time, the others wait for it. A re-list that
    /// fails keeps the old lists (the SEP lets a stale list be served when re-fetching
    /// fails) and is tried again after the same ttl.
    pub async fn freshen(&self) {
        if !self.list_hints.load().is_stale() {
            return;
        }
        let _one = self.freshening.lock().await;
        if !self.list_hints.load().is_stale() {
            return;
        }
        let current = self.state.load_full();
        let (Phase::Ready, Some(peer)) = (&current.phase, current.peer.clone()) else {
            return;
        };
        let Some(offer) = self.listed_again(&peer).await else {
            // Tried again after the same ttl.
            return self.keep_hints(ListHints {
                fetched: Instant::now(),
                ..ListHints::clone(&self.list_hints.load())
            });
        };
        let offer = self.checked(offer);
        self.keep_hints(offer.hints.clone());
        if offer.lists_as(&current) {
            return;
        }
        tracing::info!(upstream = %self.name, "stale lists re-listed, and they changed");
        let next = offer.into_state(peer, current.protocol_version.clone(), current.lane.clone());
        self.publish_over(&current, next);
    }

    /// Keeps the hints of lists just fetched (see [`ListHints::capped`]).
    pub(super) fn keep_hints(&self, hints: ListHints) {
        let hints = hints.capped(self.settings.max_cache_ttl);
        self.list_hints.store(Arc::new(hints));
    }

    /// Publishes `next` only if the state is still `current`: a connection that ended while
    /// its lists were fetched stays ended.
    fn publish_over(&self, current: &Arc<UpstreamState>, next: UpstreamState) {
        let next = Arc::new(self.numbered(next));
        let previous = self.state.compare_and_swap(current, next);
        if Arc::ptr_eq(&previous, current) {
            self.announce();
        }
    }
}
