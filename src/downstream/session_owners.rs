//! With `auth.enabled`, each streamable-HTTP session belongs to the credential (login token or
//! API key) that opened it: a request carrying a session id that another credential opened
//! is answered as if the session did not exist (404), so a leaked session id is worth
//! nothing to anyone else. It also counts each credential's open sessions (streamable HTTP
//! and WebSocket) for `limits.max_sessions_per_principal`.

use std::{collections::HashMap, sync::Arc};

use crate::sync::lock;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// Which credential (token id) opened which session.
pub struct SessionOwners {
    owners: std::sync::Mutex<HashMap<String, i64>>,
    /// Open WebSocket sessions per credential (they have no id to remember).
    websockets: Arc<std::sync::Mutex<HashMap<i64, usize>>>,
    /// rmcp's sessions, to forget the owners of sessions that ended on their own.
    sessions: Arc<LocalSessionManager>,
}

/// Past this many remembered sessions, the ended ones are forgotten.
const PRUNE_ABOVE: usize = 1024;

impl SessionOwners {
    pub fn new(sessions: Arc<LocalSessionManager>) -> Self {
        Self {
            owners: std::sync::Mutex::default(),
            websockets: Arc::default(),
            sessions,
        }
    }

    /// How many sessions credential `user` has open.
    pub async fn open_by(&self, user: i64) -> usize {
        let mine: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, owner)| **owner == user)
            .map(|(id, _)| id.clone())
            .collect();
        let live = self.sessions.sessions.read().await;
        let http = mine
            .iter()
            .filter(|id| live.keys().any(|session| session.as_ref() == id.as_str()))
            .count();
        let websockets = lock(&self.websockets).get(&user).copied().unwrap_or(0);
        http + websockets
    }

    /// Counts a WebSocket session of credential `user` for as long as the guard lives.
    pub fn websocket_opened(&self, user: i64) -> WebSocketOwned {
        *lock(&self.websockets).entry(user).or_default() += 1;
        WebSocketOwned {
            user,
            counts: self.websockets.clone(),
        }
    }

    /// Whether credential `user` may use session `id` (it opened it, or nobody is known to
    /// have).
    pub fn may_use(&self, id: &str, user: i64) -> bool {
        self.lock().get(id).is_none_or(|owner| *owner == user)
    }

    /// Records that credential `user` opened session `id`.
    pub async fn record(&self, id: String, user: i64) {
        let crowded = {
            let mut owners = self.lock();
            owners.insert(id, user);
            owners.len() > PRUNE_ABOVE
        };
        if crowded {
            let live = self.sessions.sessions.read().await;
            self.lock()
                .retain(|id, _| live.keys().any(|session| session.as_ref() == id.as_str()));
        }
    }

    /// Forgets session `id` (it was closed).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        lock(&self.owners)
    }
}

/// One open WebSocket session of a credential; dropped when the session ends.
pub struct WebSocketOwned {
    user: i64,
    counts: Arc<std::sync::Mutex<HashMap<i64, usize>>>,
}

impl Drop for WebSocketOwned {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}
