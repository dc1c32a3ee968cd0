//! Lists as fresh as their upstreams said they stay, and the hints the gateway gives its own
//! (SEP-2549, 2026-07-28: `ttlMs`, `cacheScope`).
//!
//! A list the gateway serves is put together from several upstreams' lists, so it carries
//! their merged hints: fresh for the least time any of them has left, `private` if any of
//! them is. A list an upstream gave no `ttlMs` counts as fresh for no time (the SEP's
//! default), so a catalog with a session-era upstream in it says `ttlMs: 0`. Before a list
//! is served, the upstreams whose own lists went stale are listed again (see
//! `upstream::freshness`).

use std::time::{Duration, Instant};

use rmcp::model::CacheScope;

use super::{Gateway, View};
use crate::{
    metrics::metrics,
    upstream::{Phase, Upstream, freshness::ListKind},
};

/// One page of a list, with the hints of the whole list (the SEP: every page of a list has
/// the same scope).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    pub ttl_ms: u64,
    pub cache_scope: CacheScope,
}

impl<T> Page<T> {
    /// A page no upstream's list is part of (the gateway's own tools): stale at once, the
    /// same for every caller.
    pub(super) fn own(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
            ttl_ms: 0,
            cache_scope: CacheScope::Public,
        }
    }
}

impl Gateway {
    /// Lists again, before list `kind` is served through `view`, the upstreams it shows
    /// whose lists went stale; counted in the metrics as a hit when none had. First, the
    /// lists of an upstream that announced a change are waited for until they are listed
    /// again (see `upstream::list_changes`).
    pub(super) async fn freshen(&self, kind: ListKind, view: Option<&View>) {
        let upstreams = self.upstreams.load_full();
        let changing: Vec<&std::sync::Arc<Upstream>> = upstreams
            .iter()
            .filter(|upstream| view.is_none_or(|view| view.offers(upstream)))
            .filter(|upstream| !upstream.lists_settled())
            .filter(|upstream| upstream.state().phase == Phase::Ready)
            .collect();
        futures::future::join_all(changing.iter().map(|upstream| upstream.settle_lists())).await;
        let stale: Vec<&std::sync::Arc<Upstream>> = upstreams
            .iter()
            .filter(|upstream| view.is_none_or(|view| view.offers(upstream)))
            .filter(|upstream| upstream.list_hints().is_stale())
            .collect();
        metrics().cache_lookup(method_of(kind), stale.is_empty());
        futures::future::join_all(stale.iter().map(|upstream| upstream.freshen())).await;
    }

    /// `page` of list `kind` as `view` shows it, with the list's merged hints.
    pub(super) fn with_hints<T>(
        &self,
        kind: ListKind,
        view: Option<&View>,
        (items, next_cursor): (Vec<T>, Option<String>),
    ) -> Page<T> {
        let now = Instant::now();
        let mut ttl: Option<Duration> = None;
        let mut private = false;
        let upstreams = self.upstreams.load();
        let ready = upstreams
            .iter()
            .filter(|upstream| view.is_none_or(|view| view.offers(upstream)))
            .filter(|upstream| upstream.state().phase == Phase::Ready);
        for upstream in ready {
            if let Some(hint) = upstream.list_hints().remaining(kind, now) {
                ttl = Some(ttl.map_or(hint.ttl, |least| least.min(hint.ttl)));
                private |= hint.private;
            }
        }
        Page {
            items,
            next_cursor,
            ttl_ms: ttl.map_or(0, |ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            cache_scope: if private {
                CacheScope::Private
            } else {
                CacheScope::Public
            },
        }
    }
}

fn method_of(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Tools => "tools/list",
        ListKind::Prompts => "prompts/list",
        ListKind::Resources => "resources/list",
        ListKind::Templates => "resources/templates/list",
    }
}
