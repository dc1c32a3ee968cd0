//! What every OAuth upstream shares: the registry its credentials are sealed into (opened
//! after the upstreams start, so they wait for it), the address the authorization server
//! sends the browser back to, and the sign-ins under way, by their OAuth `state`.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use super::{UpstreamAuth, store::Record};
use crate::{registry::Registry, security::Owner, sync::lock};

/// The path the authorization server redirects the browser to.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// Where the gateway publishes its own Client ID Metadata Document: its client id at
/// authorization servers that take one, when its public URL is https.
pub const CLIENT_METADATA_PATH: &str = "/oauth/client-metadata.json";

/// Where a user opens the address a call answered them with, to sign in to an upstream
/// for themselves (`credentials: per-user`): `{CONNECT_PATH}/{id}`.
pub const CONNECT_PATH: &str = "/oauth/connect";

/// How long a sign-in may take, from its authorization URL to the callback; how long a
/// sign-in address stays good.
pub const SIGN_IN_TIME: Duration = Duration::from_secs(15 * 60);

/// The credentials of the gateway itself (not of one of its users) are kept under this
/// principal; a user's under their `Identity::key`, which is never empty.
const SHARED: &str = "";

#[derive(Default)]
pub struct OAuthVault {
    /// The registry, once opened; `None` in a command that opens none (`mcps check`).
    keep: OnceLock<Option<Registry>>,
    opened: Notify,
    public_url: ArcSwapOption<String>,
    sign_ins: std::sync::Mutex<HashMap<String, SignIn>>,
    /// The addresses users were given to sign in for themselves, by their id.
    connects: std::sync::Mutex<HashMap<String, Connect>>,
    /// Whether the sign-in page can learn who a user of the identity provider is (the
    /// gateway has a client there).
    provider_users_sign_in: AtomicBool,
}

/// A sign-in under way, by its OAuth `state`.
struct SignIn {
    auth: Weak<UpstreamAuth>,
    since: Instant,
    /// The browser a user's own sign-in was started in: only that browser may finish it.
    browser: Option<String>,
}

/// Why a callback's sign-in was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum NotTaken {
    /// Unknown, finished or expired.
    Unknown,
    /// A user's sign-in, finished in another browser than the one that started it: an
    /// authorization URL passed on to someone else (the phishing the MCP spec warns of).
    OtherBrowser,
}

/// A user's way to sign in to an upstream for themselves. The page at its address checks
/// that whoever opens it is that user (the address may have been passed on) before it sends
/// them to the authorization server.
#[derive(Clone)]
pub struct Connect {
    pub auth: Weak<UpstreamAuth>,
    /// Who it was made for.
    pub owner: Owner,
    since: Instant,
    /// The sessions (by caller key) told about it, to be told when it is done.
    watchers: HashSet<u64>,
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

    /// Whether users of the identity provider can sign in for themselves: the gateway has a
    /// client at the provider to learn who they are (`auth.oauth.client_id`).
    pub fn set_provider_users_sign_in(&self, can: bool) {
        self.provider_users_sign_in.store(can, Ordering::Relaxed);
    }

    /// Whether `owner` can prove who they are at a sign-in address.
    pub fn can_sign_in(&self, owner: Owner) -> bool {
        match owner {
            Owner::User(_) => true,
            Owner::ProviderUser(_) => self.provider_users_sign_in.load(Ordering::Relaxed),
        }
    }

    /// Whether browsers reach the gateway over https (its cookies are then sent only there).
    pub fn served_over_https(&self) -> bool {
        self.public_url
            .load()
            .as_ref()
            .is_some_and(|base| base.starts_with("https://"))
    }

    /// The redirect URI of sign-ins, once the gateway listens somewhere.
    pub fn redirect_uri(&self) -> Option<String> {
        self.public_url
            .load()
            .as_ref()
            .map(|base| format!("{base}{CALLBACK_PATH}"))
    }

    /// The URL of the gateway's own client metadata document, which is its client id: only
    /// under an https public URL (a Client ID Metadata Document's URL must be https).
    pub fn own_client_metadata_url(&self) -> Option<String> {
        let base = self.public_url.load_full()?;
        base.starts_with("https://")
            .then(|| format!("{base}{CLIENT_METADATA_PATH}"))
    }

    /// The gateway's own client metadata document (draft-ietf-oauth-client-id-metadata-
    /// document): a public client that signs in through a browser and comes back to
    /// [`CALLBACK_PATH`].
    pub fn client_metadata_document(&self) -> Option<serde_json::Value> {
        let client_id = self.own_client_metadata_url()?;
        let base = self.public_url.load_full()?;
        Some(serde_json::json!({
            "client_id": client_id,
            "client_name": super::CLIENT_NAME,
            "client_uri": *base,
            "redirect_uris": [self.redirect_uri()?],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
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

    pub(super) async fn load(
        &self,
        upstream: &str,
        owner: Option<&str>,
    ) -> Result<Option<Record>, String> {
        let owner = owner.unwrap_or(SHARED);
        let Some(registry) = self.kept().await else {
            return Ok(None);
        };
        let Some(sealed) = registry
            .oauth_credentials(upstream, owner)
            .await
            .map_err(|error| error.to_string())?
        else {
            return Ok(None);
        };
        let opened = registry
            .sealer()
            .open(&context(upstream, owner), &sealed)
            .map_err(|error| error.to_string())?;
        serde_json::from_slice(&opened)
            .map(Some)
            .map_err(|error| format!("the kept credentials do not read: {error}"))
    }

    pub(super) async fn save(
        &self,
        upstream: &str,
        owner: Option<&str>,
        record: &Record,
    ) -> Result<(), String> {
        let owner = owner.unwrap_or(SHARED);
        let Some(registry) = self.kept().await else {
            return Ok(());
        };
        let json = serde_json::to_vec(record).map_err(|error| error.to_string())?;
        let sealed = registry.sealer().seal(&context(upstream, owner), &json);
        registry
            .save_oauth_credentials(upstream, owner, sealed)
            .await
            .map_err(|error| error.to_string())
    }

    pub(super) async fn forget(&self, upstream: &str, owner: Option<&str>) -> Result<(), String> {
        let owner = owner.unwrap_or(SHARED);
        let Some(registry) = self.kept().await else {
            return Ok(());
        };
        registry
            .clear_oauth_credentials(upstream, owner)
            .await
            .map_err(|error| error.to_string())
    }

    /// Forgets every upstream sign-in of the user `owner` (an `Identity::key`).
    pub async fn forget_owner(&self, owner: &str) -> Result<u64, String> {
        let Some(registry) = self.kept().await else {
            return Ok(0);
        };
        registry
            .clear_principal_oauth_credentials(owner)
            .await
            .map_err(|error| error.to_string())
    }

    /// Notes a sign-in under way, answered at the callback with `state` (in `browser` only,
    /// when one is named).
    pub(super) fn expect(
        &self,
        state: String,
        upstream: &Arc<UpstreamAuth>,
        browser: Option<&str>,
    ) {
        let mut sign_ins = lock(&self.sign_ins);
        sign_ins.retain(|_, sign_in| {
            sign_in.since.elapsed() < SIGN_IN_TIME && sign_in.auth.strong_count() > 0
        });
        let sign_in = SignIn {
            auth: Arc::downgrade(upstream),
            since: Instant::now(),
            browser: browser.map(str::to_owned),
        };
        sign_ins.insert(state, sign_in);
    }

    /// The address where `owner` signs in to `auth`'s upstream for themselves, and its id:
    /// the same while it is fresh. `None` until the gateway listens.
    pub fn connect_address(
        &self,
        auth: &Arc<UpstreamAuth>,
        owner: Owner,
    ) -> Option<(String, String)> {
        let base = self.public_url.load_full()?;
        let mut connects = lock(&self.connects);
        connects.retain(|_, connect| {
            connect.since.elapsed() < SIGN_IN_TIME && connect.auth.strong_count() > 0
        });
        let fresh = connects.iter().find(|(_, connect)| {
            connect.owner == owner
                && Weak::ptr_eq(&connect.auth, &Arc::downgrade(auth))
                && connect.since.elapsed() < SIGN_IN_TIME / 2
        });
        let id = match fresh {
            Some((id, _)) => id.clone(),
            None => {
                let id = crate::security::random_id();
                connects.insert(
                    id.clone(),
                    Connect {
                        auth: Arc::downgrade(auth),
                        owner,
                        since: Instant::now(),
                        watchers: HashSet::new(),
                    },
                );
                id
            }
        };
        Some((format!("{base}{CONNECT_PATH}/{id}"), id))
    }

    /// Notes that session `watcher` was given the address `id`: `true` the first time, when
    /// the session is to be told once the sign-in is done.
    pub fn watch(&self, id: &str, watcher: u64) -> bool {
        lock(&self.connects)
            .get_mut(id)
            .is_some_and(|connect| connect.watchers.insert(watcher))
    }

    /// The sign-in address `id` names, while it is fresh.
    pub fn connect(&self, id: &str) -> Option<Connect> {
        let connects = lock(&self.connects);
        let connect = connects.get(id)?;
        (connect.since.elapsed() < SIGN_IN_TIME).then(|| connect.clone())
    }

    /// The upstream whose sign-in `state` names, taken (a state is good for one callback),
    /// answered in `browser` (the id its cookie holds, if any).
    pub fn take(&self, state: &str, browser: Option<&str>) -> Result<Arc<UpstreamAuth>, NotTaken> {
        let sign_in = lock(&self.sign_ins)
            .remove(state)
            .ok_or(NotTaken::Unknown)?;
        if sign_in.since.elapsed() >= SIGN_IN_TIME {
            return Err(NotTaken::Unknown);
        }
        if sign_in
            .browser
            .as_deref()
            .is_some_and(|bound| Some(bound) != browser)
        {
            return Err(NotTaken::OtherBrowser);
        }
        sign_in.auth.upgrade().ok_or(NotTaken::Unknown)
    }
}

/// What a sealed record is bound to: it opens only as this upstream's, and this owner's.
use crate::registry::oauth_seal_context as context;
