//! Who is calling: bearer tokens (login tokens and API keys) checked against an in-memory
//! copy of the registry's active tokens, so authenticating a request never touches SQLite.
//! The registry stays the record; whoever creates or revokes a token there updates this.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};

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

/// One accepted token.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub principal: Principal,
    /// Milliseconds since the Unix epoch; `None` never expires.
    pub expires_at: Option<i64>,
}

/// The accepted tokens, by SHA-256 of the secret.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: RwLock<HashMap<[u8; 32], TokenEntry>>,
}

impl TokenCache {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Accepts the token whose secret hashes to `hash` from now on.
    pub fn insert(&self, hash: [u8; 32], entry: TokenEntry) {
        self.write().insert(hash, entry);
    }

    /// Stops accepting token `token_id`.
    pub fn revoke(&self, token_id: i64) {
        self.write()
            .retain(|_, entry| entry.principal.token_id != token_id);
    }

    /// The principal behind `secret` at `now_ms`, if the token is known and not expired.
    pub fn verify(&self, secret: &str, now_ms: i64) -> Option<Principal> {
        let hash = secret_hash(secret);
        let tokens = self
            .tokens
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        let entry = tokens.get(&hash)?;
        if entry.expires_at.is_some_and(|expires| expires <= now_ms) {
            return None;
        }
        Some(entry.principal.clone())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<[u8; 32], TokenEntry>> {
        // A poisoned lock only means a panic elsewhere while it was held; the map stays valid.
        self.tokens
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
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
        cache.insert(
            secret_hash("a"),
            TokenEntry {
                principal: principal(1),
                expires_at: Some(100),
            },
        );
        cache.insert(
            secret_hash("b"),
            TokenEntry {
                principal: principal(2),
                expires_at: None,
            },
        );
        assert_eq!(cache.verify("a", 99), Some(principal(1)));
        assert_eq!(cache.verify("a", 100), None, "expired");
        assert_eq!(cache.verify("c", 0), None, "unknown");
        cache.revoke(2);
        assert_eq!(cache.verify("b", 0), None, "revoked");
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
