//! What every OAuth upstream shares: the registry its credentials are sealed into (opened
//! after the upstreams start, so they wait for it), the address the authorization server
//! sends the browser back to, and the sign-ins under way, by their OAuth `state`.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock, Weak},
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use super::{UpstreamAuth, store::Record};
use crate::{registry::Registry, sync::lock};

/// The path the authorization server redirects the browser to.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// How long a sign-in may take, from its authorization URL to the callback.
const SIGN_IN_TIME: Duration = Duration::from_secs(15 * 60);

/// The credentials of the gateway itself (not of one of its users) are kept under this
/// principal.
const SHARED: &str = "";

#[derive(Default)]
pub struct OAuthVault {
    /// The registry, once opened; `None` in a command that opens none (`mcps check`).
    keep: OnceLock<Option<Registry>>,
    opened: Notify,
    public_url: ArcSwapOption<String>,
    sign_ins: std::sync::Mutex<HashMap<String, (Weak<UpstreamAuth>, Instant)>>,
}

impl std::fmt::Debug for OAuthVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthVault")
            .field("open", &self.keep.get().is_some())
            .finish()
    }
}

impl OAuthVault {
    /// Credentials are kept in `registry`, sealed by its sealer, from now on.
    pub fn open(&self, registry: Registry) {
        if self.keep.set(Some(registry)).is_ok() {
            self.opened.notify_waiters();
        }
    }

    /// No registry will be opened (a command that only looks): nothing is kept, and nobody
    /// waits for it.
    pub fn without_registry(&self) {
        if self.keep.set(None).is_ok() {
            self.opened.notify_waiters();
        }
    }

    /// Where browsers reach the gateway (`server.public_url`, else the listen address).
    pub fn set_public_url(&self, url: &str) {
        self.public_url
            .store(Some(Arc::new(url.trim_end_matches('/').to_owned())));
    }

    /// The redirect URI of sign-ins, once the gateway listens somewhere.
    pub fn redirect_uri(&self) -> Option<String> {
        self.public_url
            .load()
            .as_ref()
            .map(|base| format!("{base}{CALLBACK_PATH}"))
    }

    /// The registry, once open; `None` when there will be none (then sign-ins live in memory).
    async fn kept(&self) -> Option<&Registry> {
        loop {
            let opened = self.opened.notified();
            let mut opened = std::pin::pin!(opened);
            opened.as_mut().enable();
            if let Some(keep) = self.keep.get() {
                return keep.as_ref();
            }
            opened.await;
        }
    }

    pub(super) async fn load(&self, upstream: &str) -> Result<Option<Record>, String> {
        let Some(registry) = self.kept().await else {
            return Ok(None);
        };
        let Some(sealed) = registry
            .oauth_credentials(upstream, SHARED)
            .await
            .map_err(|error| error.to_string())?
        else {
            return Ok(None);
        };
        let opened = registry
            .sealer()
            .open(&context(upstream), &sealed)
            .map_err(|error| error.to_string())?;
        serde_json::from_slice(&opened)
            .map(Some)
            .map_err(|error| format!("the kept credentials do not read: {error}"))
    }

    pub(super) async fn save(&self, upstream: &str, record: &Record) -> Result<(), String> {
        let Some(registry) = self.kept().await else {
            return Ok(());
        };
        let json = serde_json::to_vec(record).map_err(|error| error.to_string())?;
        let sealed = registry.sealer().seal(&context(upstream), &json);
        registry
            .save_oauth_credentials(upstream, SHARED, sealed)
            .await
            .map_err(|error| error.to_string())
    }

    pub(super) async fn forget(&self, upstream: &str) -> Result<(), String> {
        let Some(registry) = self.kept().await else {
            return Ok(());
        };
        registry
            .clear_oauth_credentials(upstream, SHARED)
            .await
            .map_err(|error| error.to_string())
    }

    /// Notes a sign-in under way, answered at the callback with `state`.
    pub(super) fn expect(&self, state: String, upstream: &Arc<UpstreamAuth>) {
        let mut sign_ins = lock(&self.sign_ins);
        sign_ins
            .retain(|_, (auth, since)| since.elapsed() < SIGN_IN_TIME && auth.strong_count() > 0);
        sign_ins.insert(state, (Arc::downgrade(upstream), Instant::now()));
    }

    /// The upstream whose sign-in `state` names, taken (a state is good for one callback).
    pub fn take(&self, state: &str) -> Option<Arc<UpstreamAuth>> {
        let (auth, since) = lock(&self.sign_ins).remove(state)?;
        (since.elapsed() < SIGN_IN_TIME).then(|| auth.upgrade())?
    }
}

/// What a sealed record is bound to: it opens only as this upstream's.
fn context(upstream: &str) -> String {
    format!("oauth:{upstream}:{SHARED}")
}
