//! With `auth.enabled`, each streamable-HTTP session belongs to the credential (login token or
//! API key) that opened it: a request carrying a session id that another credential opened
//! is answered as if the session did not exist (404), so a leaked session id is worth
//! nothing to anyone else.

use std::{collections::HashMap, sync::Arc};

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;

/// Which credential (token id) opened which session.
pub struct SessionOwners {
    owners: std::sync::Mutex<HashMap<String, i64>>,
    /// rmcp's sessions, to forget the owners of sessions that ended on their own.
    sessions: Arc<LocalSessionManager>,
}

/// Past this many remembered sessions, the ended ones are forgotten.
const PRUNE_ABOVE: usize = 1024;

impl SessionOwners {
    pub fn new(sessions: Arc<LocalSessionManager>) -> Self {
        Self {
            owners: std::sync::Mutex::default(),
            sessions,
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
        // A poisoned lock only means a panic elsewhere while it was held; the map stays valid.
        self.owners
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
