//! The gateway's cache of `resources/read` answers, by the hints upstreams give them
//! (SEP-2549, 2026-07-28: `ttlMs`, `cacheScope`).
//!
//! The gateway is what the SEP calls a shared cache: many principals reach one upstream
//! through it. So an answer is kept only when its upstream gave it a positive `ttlMs`, and
//! - a `public` one is served to every caller the route lets read it;
//! - a `private` one only to the principal it was read for, and never kept for a caller
//!   without one (no `auth`: the gateway cannot tell users apart);
//! - one read on a user's own connection (`credentials: per-user`) is kept as private,
//!   whatever it says: access to that upstream is each user's own.
//!
//! Answers are kept under the generation of the connection that gave them
//! (`UpstreamState::generation`), so an upstream's restart or re-list retires every answer
//! it gave at once; its `notifications/resources/updated` retires that URI's. A kept answer
//! goes out with the time it has left as its `ttlMs`.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::model::{CacheScope, ReadResourceResult};

use crate::{config::CacheConfig, metrics::metrics, sync::lock};

/// Who a `resources/read` is answered for.
pub(super) struct Reader<'a> {
    /// The caller's principal (`Identity::key`), if it has one.
    pub principal: Option<&'a str>,
    /// Read on the principal's own connection (`credentials: per-user`).
    pub own_connection: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    generation: u64,
    uri: String,
    /// The principal a private answer was read for; `None` for a public one.
    reader: Option<Arc<str>>,
}

struct Kept {
    result: Arc<ReadResourceResult>,
    expires: Instant,
    bytes: usize,
    /// Its place in `Answers::by_expiry`.
    order: (Instant, u64),
}

#[derive(Default)]
struct Answers {
    kept: HashMap<Key, Kept>,
    /// The same answers, the first to go stale first: what is dropped to make room.
    by_expiry: BTreeMap<(Instant, u64), Key>,
    bytes: usize,
    next: u64,
}

pub(super) struct ReadCache {
    enabled: bool,
    max_bytes: usize,
    max_ttl: Duration,
    answers: Mutex<Answers>,
}

impl ReadCache {
    pub(super) fn new(config: &CacheConfig) -> Self {
        Self {
            enabled: config.enabled,
            max_bytes: config.max_bytes(),
            max_ttl: config.max_ttl(),
            answers: Mutex::default(),
        }
    }

    /// The answer kept for `uri` of connection `generation` that `reader` may be given, with
    /// the time it has left as its `ttlMs`; counted in the metrics.
    pub(super) fn get(
        &self,
        generation: u64,
        uri: &str,
        reader: &Reader<'_>,
    ) -> Option<ReadResourceResult> {
        if !self.enabled {
            return None;
        }
        let found = self.find(generation, uri, reader);
        metrics().cache_lookup("resources/read", found.is_some());
        found
    }

    fn find(&self, generation: u64, uri: &str, reader: &Reader<'_>) -> Option<ReadResourceResult> {
        let now = Instant::now();
        let own = reader.principal.map(|principal| Key {
            generation,
            uri: uri.to_owned(),
            reader: Some(Arc::from(principal)),
        });
        let shared = (!reader.own_connection).then(|| Key {
            generation,
            uri: uri.to_owned(),
            reader: None,
        });
        let answers = lock(&self.answers);
        let kept = [own, shared]
            .into_iter()
            .flatten()
            .find_map(|key| answers.kept.get(&key).filter(|kept| kept.expires > now))?;
        let mut result = ReadResourceResult::clone(&kept.result);
        let left = kept.expires.saturating_duration_since(now);
        result.ttl_ms = Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        Some(result)
    }

    /// Keeps `result`, read for `reader` from connection `generation`, if its hints allow.
    pub(super) fn keep(
        &self,
        generation: u64,
        uri: &str,
        reader: &Reader<'_>,
        result: &ReadResourceResult,
    ) {
        let ttl = Duration::from_millis(result.ttl_ms.unwrap_or(0)).min(self.max_ttl);
        if !self.enabled || ttl.is_zero() {
            return;
        }
        let private = result.cache_scope == Some(CacheScope::Private) || reader.own_connection;
        let reader_key = match (private, reader.principal) {
            (false, _) => None,
            (true, Some(principal)) => Some(Arc::from(principal)),
            (true, None) => return,
        };
        let bytes = serde_json::to_vec(result).map_or(usize::MAX, |json| json.len()) + uri.len();
        if bytes > self.max_bytes {
            return;
        }
        let key = Key {
            generation,
            uri: uri.to_owned(),
            reader: reader_key,
        };
        let now = Instant::now();
        let mut answers = lock(&self.answers);
        answers.drop_stale(now);
        answers.remove(&key);
        while answers.bytes + bytes > self.max_bytes && answers.drop_first() {}
        answers.insert(key, Arc::new(result.clone()), now + ttl, bytes);
    }

    /// Retires every answer kept for `uri` (the upstream said it was updated).
    pub(super) fn forget_uri(&self, uri: &str) {
        let mut answers = lock(&self.answers);
        let keys: Vec<Key> = answers
            .kept
            .keys()
            .filter(|key| key.uri == uri)
            .cloned()
            .collect();
        for key in keys {
            answers.remove(&key);
        }
    }

    /// How many answers are kept, and their size: for tests.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let answers = lock(&self.answers);
        (answers.kept.len(), answers.bytes)
    }
}

impl Answers {
    fn insert(
        &mut self,
        key: Key,
        result: Arc<ReadResourceResult>,
        expires: Instant,
        bytes: usize,
    ) {
        self.next += 1;
        let order = (expires, self.next);
        self.by_expiry.insert(order, key.clone());
        self.bytes += bytes;
        let kept = Kept {
            result,
            expires,
            bytes,
            order,
        };
        self.kept.insert(key, kept);
    }

    fn remove(&mut self, key: &Key) {
        if let Some(kept) = self.kept.remove(key) {
            self.by_expiry.remove(&kept.order);
            self.bytes -= kept.bytes;
        }
    }

    /// Drops the answer closest to going stale; `false` when none is left.
    fn drop_first(&mut self) -> bool {
        let Some((_, key)) = self.by_expiry.pop_first() else {
            return false;
        };
        if let Some(kept) = self.kept.remove(&key) {
            self.bytes -= kept.bytes;
        }
        true
    }

    fn drop_stale(&mut self, now: Instant) {
        while self
            .by_expiry
            .first_key_value()
            .is_some_and(|((expires, _), _)| *expires <= now)
        {
            self.drop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::ResourceContents;

    use super::*;

    fn answer(text: &str, ttl_ms: u64, scope: CacheScope) -> ReadResourceResult {
        ReadResourceResult::new(vec![ResourceContents::text(text, "test://a")])
            .with_ttl_ms(ttl_ms)
            .with_cache_scope(scope)
    }

    fn cache(max_mib: usize) -> ReadCache {
        ReadCache::new(&CacheConfig {
            max_mib,
            ..CacheConfig::default()
        })
    }

    const ALICE: Reader = Reader {
        principal: Some("key:1"),
        own_connection: false,
    };
    const BOB: Reader = Reader {
        principal: Some("key:2"),
        own_connection: false,
    };
    const NOBODY: Reader = Reader {
        principal: None,
        own_connection: false,
    };

    #[test]
    fn a_public_answer_serves_everyone_and_a_private_one_only_its_reader() {
        let cache = cache(1);
        cache.keep(
            1,
            "test://public",
            &ALICE,
            &answer("p", 60_000, CacheScope::Public),
        );
        cache.keep(
            1,
            "test://private",
            &ALICE,
            &answer("s", 60_000, CacheScope::Private),
        );
        for reader in [&ALICE, &BOB, &NOBODY] {
            assert!(cache.get(1, "test://public", reader).is_some());
        }
        assert!(cache.get(1, "test://private", &ALICE).is_some());
        assert!(cache.get(1, "test://private", &BOB).is_none());
        assert!(cache.get(1, "test://private", &NOBODY).is_none());
        // Another connection's generation finds nothing.
        assert!(cache.get(2, "test://public", &ALICE).is_none());
    }

    #[test]
    fn what_may_not_be_kept_is_not() {
        let cache = cache(1);
        cache.keep(
            1,
            "test://zero",
            &ALICE,
            &answer("z", 0, CacheScope::Public),
        );
        let mut silent = answer("n", 0, CacheScope::Public);
        silent.ttl_ms = None;
        cache.keep(1, "test://silent", &ALICE, &silent);
        cache.keep(
            1,
            "test://anyone",
            &NOBODY,
            &answer("a", 60_000, CacheScope::Private),
        );
        assert_eq!(cache.size().0, 0);
        // A user's own connection: kept for them alone, even when it says public.
        let own = Reader {
            own_connection: true,
            ..ALICE
        };
        cache.keep(
            1,
            "test://own",
            &own,
            &answer("o", 60_000, CacheScope::Public),
        );
        assert!(cache.get(1, "test://own", &own).is_some());
        let bobs_own = Reader {
            own_connection: true,
            ..BOB
        };
        assert!(cache.get(1, "test://own", &bobs_own).is_none());
        assert!(cache.get(1, "test://own", &NOBODY).is_none());
    }

    #[test]
    fn a_kept_answer_tells_the_time_it_has_left_and_goes_stale() {
        let cache = cache(1);
        cache.keep(
            1,
            "test://a",
            &ALICE,
            &answer("a", 60_000, CacheScope::Public),
        );
        let ttl = cache.get(1, "test://a", &ALICE).and_then(|r| r.ttl_ms);
        assert!(
            ttl.is_some_and(|ttl| ttl <= 60_000 && ttl > 50_000),
            "{ttl:?}"
        );
        cache.keep(1, "test://b", &ALICE, &answer("b", 1, CacheScope::Public));
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(1, "test://b", &ALICE).is_none());
    }

    #[test]
    fn an_update_retires_the_uri_for_everyone() {
        let cache = cache(1);
        cache.keep(
            1,
            "test://a",
            &ALICE,
            &answer("a", 60_000, CacheScope::Private),
        );
        cache.keep(
            1,
            "test://a",
            &BOB,
            &answer("b", 60_000, CacheScope::Private),
        );
        cache.keep(
            1,
            "test://c",
            &BOB,
            &answer("c", 60_000, CacheScope::Public),
        );
        cache.forget_uri("test://a");
        assert!(cache.get(1, "test://a", &ALICE).is_none());
        assert!(cache.get(1, "test://a", &BOB).is_none());
        assert!(cache.get(1, "test://c", &BOB).is_some());
    }

    #[test]
    fn the_size_stays_under_its_bound_dropping_the_first_to_go_stale() {
        let cache = cache(1);
        let big = "x".repeat(300 * 1024);
        for (n, ttl) in [(1, 10_000), (2, 50_000), (3, 30_000), (4, 40_000)] {
            let uri = format!("test://{n}");
            cache.keep(1, &uri, &ALICE, &answer(&big, ttl, CacheScope::Public));
        }
        let (count, bytes) = cache.size();
        assert!(bytes <= 1024 * 1024, "{bytes}");
        assert_eq!(count, 3);
        // The one that had the least time left made room.
        assert!(cache.get(1, "test://1", &ALICE).is_none());
        assert!(cache.get(1, "test://2", &ALICE).is_some());
        // One answer larger than the whole cache is not kept.
        let huge = "x".repeat(2 * 1024 * 1024);
        cache.keep(
            1,
            "test://huge",
            &ALICE,
            &answer(&huge, 60_000, CacheScope::Public),
        );
        assert!(cache.get(1, "test://huge", &ALICE).is_none());
    }
}
