//! Who is calling: bearer tokens (login tokens and API keys) checked against an in-memory
//! copy of the registry's active tokens, so authenticating a request never touches SQLite.
//! The registry stays the record; whoever creates or revokes a token there updates this.
//!
//! A request is over when it is answered, but a WebSocket, an event stream or a session
//! outlives the request that opened it. Those hold the token's [`Lease`], which ends when the
//! token is revoked (an API key deleted, a logout) or expires: this is the one place that
//! decides when a credential stops, for every door that keeps a channel open.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub is_admin: bool,
    /// The token's id in the registry.
    pub token_id: i64,
    /// The API key's name, when the token is one (login tokens have none).
    pub key_name: Option<String>,
    /// The virtual server the API key is bound to: it sees and calls nothing else.
    pub virtual_server: Option<String>,
}

impl Principal {
    /// Who the request is made for, as the parts that act for a user see it.
    pub fn identity(&self) -> Identity {
        Identity {
            name: Arc::from(self.username.as_str()),
            user_id: self.user_id,
            token_id: self.token_id,
            api_key: self.key_name.is_some(),
        }
    }
}

/// The principal key (see [`Identity::key`]) of the API key `id`.
pub fn api_key_principal(id: i64) -> String {
    format!("key:{id}")
}

/// Who a request is made for: the name the call history shows, and what tells principals
/// apart where each has something of their own (an upstream sign-in with
/// `credentials: per-user`). Each API key is a principal of its own (one agent of its user);
/// a user's logins are one principal, the user; so is an identity provider's subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's name; for a user of the identity provider, the token's subject.
    pub name: Arc<str>,
    /// The registry's id of the user (an API key's owner); negative for a user of the
    /// identity provider.
    pub user_id: i64,
    /// The API key's id; for a user of the identity provider, what stands for their subject
    /// (see `downstream::identity`).
    token_id: i64,
    api_key: bool,
}

impl Identity {
    /// Unique among all principals, whichever way they came: a registry user and an
    /// identity provider's subject of the same name are two.
    pub fn key(&self) -> String {
        if self.api_key {
            api_key_principal(self.token_id)
        } else if self.user_id >= 0 {
            format!("user:{}", self.user_id)
        } else {
            format!("idp:{}", self.token_id)
        }
    }

    /// Who must prove themselves in a browser to act for this principal.
    pub fn owner(&self) -> Owner {
        // The registry's ids are never negative; the identity provider's users have -1.
        if self.user_id >= 0 {
            Owner::User(self.user_id)
        } else {
            Owner::ProviderUser(self.token_id)
        }
    }
}

/// Who a principal belongs to, as a browser page can check it: an API key belongs to its
/// user, a user to themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A user of the registry, by id: they log in with their password.
    User(i64),
    /// A user of the identity provider, by the credential id of their subject: they log in
    /// at the provider.
    ProviderUser(i64),
}

/// One accepted token.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub principal: Principal,
    /// Milliseconds since the Unix epoch; `None` never expires.
    pub expires_at: Option<i64>,
}

/// An accepted token and what ends the channels opened with it.
#[derive(Debug)]
struct Held {
    entry: TokenEntry,
    revoked: CancellationToken,
    /// When it was accepted here: a reading of the registry older than this may not know it.
    since: std::time::Instant,
}

/// The accepted tokens, by SHA-256 of the secret.
pub struct TokenCache {
    tokens: RwLock<HashMap<[u8; 32], Held>>,
    /// Where a token unknown here is looked for (the registry other gateways write to).
    source: std::sync::OnceLock<Arc<dyn TokenSource>>,
    /// Look-ups in the current second, and when it began: a flood of made-up tokens must
    /// not become a flood of queries.
    lookups: std::sync::Mutex<(std::time::Instant, u32)>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self {
            tokens: RwLock::default(),
            source: std::sync::OnceLock::new(),
            lookups: std::sync::Mutex::new((std::time::Instant::now(), 0)),
        }
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

/// Where a token unknown to this gateway may be found: one another gateway on the same
/// registry made a moment ago, before its announcement arrived.
pub trait TokenSource: Send + Sync {
    /// The token whose secret hashes to `hash`, if it is accepted there.
    fn look_up(&self, hash: [u8; 32]) -> futures::future::BoxFuture<'_, Option<TokenEntry>>;
}

/// Look-ups of unknown tokens per second, beyond which an unknown token is refused unasked.
const LOOKUPS_PER_SECOND: u32 = 50;

/// How long a channel opened with a token may stay open: until the token is revoked or
/// expires, whichever comes first.
#[derive(Debug, Clone)]
pub struct Lease {
    revoked: CancellationToken,
    /// Milliseconds since the Unix epoch; `None` never expires.
    expires_at: Option<i64>,
}

/// Why a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEnd {
    /// Revoked: the API key was deleted, or the login token logged out.
    Revoked,
    Expired,
}

impl std::fmt::Display for LeaseEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Revoked => "the credential was revoked",
            Self::Expired => "the credential expired",
        })
    }
}

impl Lease {
    /// The lease of a credential nobody here can revoke, that expires at `expires_at`
    /// (milliseconds since the Unix epoch): an identity provider's access token.
    pub fn until(expires_at: i64) -> Self {
        Self {
            revoked: CancellationToken::new(),
            expires_at: Some(expires_at),
        }
    }

    /// Resolves when the token stops being accepted.
    pub async fn ended(&self) -> LeaseEnd {
        let expiry = async {
            match self.expires_at {
                Some(at) => {
                    let left = at.saturating_sub(crate::registry::now_ms()).max(0);
                    tokio::time::sleep(std::time::Duration::from_millis(left.unsigned_abs())).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = self.revoked.cancelled() => LeaseEnd::Revoked,
            () = expiry => LeaseEnd::Expired,
        }
    }
}

impl TokenCache {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Accepts the token whose secret hashes to `hash` from now on.
    pub fn insert(&self, hash: [u8; 32], entry: TokenEntry) {
        let held = Held {
            entry,
            revoked: CancellationToken::new(),
            since: std::time::Instant::now(),
        };
        let now = crate::registry::now_ms();
        let mut tokens = self.write();
        // Expired login tokens are never asked for again; each login would otherwise leave one.
        tokens.retain(|_, held| held.entry.expires_at.is_none_or(|at| at > now));
        tokens.insert(hash, held);
    }

    /// Stops accepting token `token_id`, and ends every channel opened with it.
    pub fn revoke(&self, token_id: i64) {
        self.write().retain(|_, held| {
            let revoked = held.entry.principal.token_id == token_id;
            if revoked {
                held.revoked.cancel();
            }
            !revoked
        });
    }

    /// Makes the accepted tokens those of `active`, the registry's as read at `read_at`
    /// (another gateway on the same database made or revoked some): new ones are accepted,
    /// and those missing are revoked, ending their channels; the principals of those revoked.
    /// A token accepted here after `read_at` is kept: the reading may predate it.
    pub fn sync(
        &self,
        active: Vec<([u8; 32], TokenEntry)>,
        read_at: std::time::Instant,
    ) -> Vec<Principal> {
        let active: HashMap<[u8; 32], TokenEntry> = active.into_iter().collect();
        let mut tokens = self.write();
        let mut revoked = Vec::new();
        tokens.retain(|hash, held| {
            let kept = active.contains_key(hash) || held.since > read_at;
            if !kept {
                held.revoked.cancel();
                revoked.push(held.entry.principal.clone());
            }
            kept
        });
        for (hash, entry) in active {
            tokens.entry(hash).or_insert_with(|| Held {
                entry,
                revoked: CancellationToken::new(),
                since: std::time::Instant::now(),
            });
        }
        revoked
    }

    /// Looks for tokens unknown here in `source` too (see [`Self::verify_anywhere`]).
    pub fn look_up_in(&self, source: Arc<dyn TokenSource>) {
        let _ = self.source.set(source);
    }

    /// [`Self::verify_with_lease`], and for a token unknown here, its source's answer (at most
    /// [`LOOKUPS_PER_SECOND`] times a second): a key made on another gateway on the same
    /// registry works here at once, not only when that gateway's announcement arrives.
    pub async fn verify_anywhere(&self, secret: &str, now_ms: i64) -> Option<(Principal, Lease)> {
        if let Some(known) = self.verify_with_lease(secret, now_ms) {
            return Some(known);
        }
        // Only the registry's own secrets are worth a query (an identity provider's JWT is not).
        if !secret.starts_with(crate::registry::SECRET_PREFIX) {
            return None;
        }
        let source = self.source.get()?;
        {
            let mut lookups = crate::sync::lock(&self.lookups);
            if lookups.0.elapsed() >= std::time::Duration::from_secs(1) {
                *lookups = (std::time::Instant::now(), 0);
            }
            if lookups.1 >= LOOKUPS_PER_SECOND {
                return None;
            }
            lookups.1 += 1;
        }
        let hash = secret_hash(secret);
        let entry = source.look_up(hash).await?;
        self.insert(hash, entry);
        self.verify_with_lease(secret, now_ms)
    }

    /// The principal behind `secret` at `now_ms`, if the token is known and not expired.
    pub fn verify(&self, secret: &str, now_ms: i64) -> Option<Principal> {
        self.verify_with_lease(secret, now_ms)
            .map(|(principal, _)| principal)
    }

    /// The same, with the lease of a channel that the request opens.
    pub fn verify_with_lease(&self, secret: &str, now_ms: i64) -> Option<(Principal, Lease)> {
        let hash = secret_hash(secret);
        let tokens = crate::sync::read(&self.tokens);
        let held = tokens.get(&hash)?;
        let entry = &held.entry;
        if entry.expires_at.is_some_and(|expires| expires <= now_ms) {
            return None;
        }
        let lease = Lease {
            revoked: held.revoked.clone(),
            expires_at: entry.expires_at,
        };
        Some((entry.principal.clone(), lease))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<[u8; 32], Held>> {
        crate::sync::write(&self.tokens)
    }
}

/// The SHA-256 a token's secret is stored and looked up under. The secrets are 256 random
/// bits, so a fast hash is enough: there is nothing to guess.
pub fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The token of an `Authorization: Bearer <token>` header. Several `Authorization` headers,
/// or another scheme, give none.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(token_id: i64) -> Principal {
        Principal {
            user_id: 1,
            username: "admin".into(),
            is_admin: true,
            token_id,
            key_name: None,
            virtual_server: None,
        }
    }

    #[test]
    fn a_token_is_accepted_until_it_expires_or_is_revoked() {
        let cache = TokenCache::default();
        let later = crate::registry::now_ms() + 60_000;
        cache.insert(
            secret_hash("a"),
            TokenEntry {
                principal: principal(1),
                expires_at: Some(later),
            },
        );
        cache.insert(
            secret_hash("b"),
            TokenEntry {
                principal: principal(2),
                expires_at: None,
            },
        );
        assert_eq!(cache.verify("a", later - 1), Some(principal(1)));
        assert_eq!(cache.verify("a", later), None, "expired");
        assert_eq!(cache.verify("c", 0), None, "unknown");
        cache.revoke(2);
        assert_eq!(cache.verify("b", 0), None, "revoked");
    }

    #[tokio::test]
    async fn a_sync_takes_new_tokens_revokes_missing_ones_and_keeps_newer_ones() {
        let cache = TokenCache::default();
        let entry = |id| TokenEntry {
            principal: principal(id),
            expires_at: None,
        };
        cache.insert(secret_hash("kept"), entry(1));
        cache.insert(secret_hash("revoked elsewhere"), entry(2));
        let (_, lease) = cache
            .verify_with_lease("revoked elsewhere", 0)
            .expect("accepted");
        let read_at = std::time::Instant::now();
        // Accepted here after the registry was read: the reading cannot know it yet.
        cache.insert(secret_hash("made here meanwhile"), entry(3));
        let revoked = cache.sync(
            vec![
                (secret_hash("kept"), entry(1)),
                (secret_hash("made elsewhere"), entry(4)),
            ],
            read_at,
        );
        assert_eq!(revoked, vec![principal(2)]);
        assert_eq!(cache.verify("kept", 0), Some(principal(1)));
        assert_eq!(cache.verify("made elsewhere", 0), Some(principal(4)));
        assert_eq!(cache.verify("made here meanwhile", 0), Some(principal(3)));
        assert_eq!(cache.verify("revoked elsewhere", 0), None);
        assert_eq!(lease.ended().await, LeaseEnd::Revoked, "its channels end");
    }

    #[test]
    fn expired_tokens_are_dropped_as_new_ones_come() {
        let cache = TokenCache::default();
        let now = crate::registry::now_ms();
        for (secret, expires_at) in [("old", now - 1), ("new", now + 60_000)] {
            cache.insert(
                secret_hash(secret),
                TokenEntry {
                    principal: principal(1),
                    expires_at: Some(expires_at),
                },
            );
        }
        assert_eq!(cache.tokens.read().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_lease_ends_when_its_token_is_revoked_or_expires() {
        let cache = TokenCache::default();
        let now = crate::registry::now_ms();
        cache.insert(
            secret_hash("key"),
            TokenEntry {
                principal: principal(1),
                expires_at: None,
            },
        );
        cache.insert(
            secret_hash("login"),
            TokenEntry {
                principal: principal(2),
                expires_at: Some(now + 50),
            },
        );
        let (_, key) = cache.verify_with_lease("key", now).unwrap();
        let (_, login) = cache.verify_with_lease("login", now).unwrap();
        assert_eq!(login.ended().await, LeaseEnd::Expired);
        let waiting = tokio::spawn(async move { key.ended().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "an API key does not expire");
        cache.revoke(1);
        assert_eq!(waiting.await.unwrap(), LeaseEnd::Revoked);
    }

    #[test]
    fn only_one_bearer_header_counts() {
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.append(header::AUTHORIZATION, "Bearer def".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        let mut basic = HeaderMap::new();
        basic.append(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&basic), None);
    }
}
