//! Gateways that share one registry agree: what another gateway on the same database changed
//! (see `registry::changes`) is taken here too. API keys and logins made there are accepted
//! here, those revoked there are refused here and their channels end; services added,
//! changed or removed through another gateway's API start, change or stop here; files
//! uploaded there are written here (`uploads`).

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{AdminState, auth};
use crate::{
    registry::{Changes, RegistryError},
    security::{TokenEntry, TokenSource},
};

/// How often everything is read again, for changes whose announcement was missed (and, on
/// SQLite, which has none, for every change).
pub const RESYNC: Duration = Duration::from_secs(10);

/// The registry, where a token unknown to this gateway's cache is looked for.
struct RegistryTokens(crate::registry::Registry);

impl TokenSource for RegistryTokens {
    fn look_up(&self, hash: [u8; 32]) -> BoxFuture<'_, Option<TokenEntry>> {
        Box::pin(async move {
            match self.0.active_token(hash).await {
                Ok(token) => token.as_ref().map(|token| auth::entry_of(token).1),
                Err(error) => {
                    tracing::warn!(%error, "cannot look for a token in the registry");
                    None
                }
            }
        })
    }
}

/// Takes the registry's `changes` until `stop`; a token unknown here is looked for in the
/// registry from now on.
pub async fn follow(state: Arc<AdminState>, changes: Arc<Changes>, stop: CancellationToken) {
    state
        .tokens
        .look_up_in(Arc::new(RegistryTokens(state.registry.clone())));
    if let Err(error) = super::uploads::sync(&state).await {
        tracing::warn!(%error, "cannot share the uploads through the registry");
    }
    loop {
        let due = tokio::select! {
            due = changes.next() => due,
            () = stop.cancelled() => return,
        };
        tracing::debug!(?due, "reading the registry again");
        if due.tokens
            && let Err(error) = sync_tokens(&state).await
        {
            tracing::warn!(%error, "cannot read the registry's tokens again");
        }
        if due.services
            && let Err(error) = sync_services(&state).await
        {
            tracing::warn!(%error, "cannot read the registry's services again");
        }
        if due.uploads
            && let Err(error) = super::uploads::sync(&state).await
        {
            tracing::warn!(%error, "cannot read the registry's uploads again");
        }
    }
}

async fn sync_tokens(state: &AdminState) -> Result<(), RegistryError> {
    let read_at = std::time::Instant::now();
    let active = state.registry.active_tokens().await?;
    let revoked = state
        .tokens
        .sync(active.iter().map(auth::entry_of).collect(), read_at);
    // A key revoked (or expired) elsewhere: its sign-ins to per-user upstreams go with it
    // here too, as on the gateway that revoked it (a login's are its user's, and stay).
    for key in revoked
        .iter()
        .filter(|principal| principal.key_name.is_some())
    {
        state
            .gateway
            .forget_principal(&crate::security::api_key_principal(key.token_id))
            .await;
    }
    Ok(())
}

async fn sync_services(state: &AdminState) -> Result<(), RegistryError> {
    // As the API's own changes do: one change of services at a time.
    let _serial = state.services_lock.lock().await;
    let stored = state.registry.services().await?;
    // The file's upstreams as it reads now (a reload may have added some since the start).
    let file: HashSet<String> = match &state.reloader {
        Some(reloader) => reloader.upstream_names().await,
        None => state.config.upstreams.keys().cloned().collect(),
    };
    let from_file = |name: &str| file.contains(name);
    for service in &stored {
        let name = service.name.as_str();
        if from_file(name) {
            continue;
        }
        match state.gateway.upstream(name) {
            None => {
                tracing::info!(service = name, "service added by another gateway");
                if let Err(error) = state.gateway.add_upstream(name, service.spec.clone()) {
                    tracing::warn!(service = name, %error, "cannot start a service added by another gateway");
                }
            }
            Some(running) if running.config() != &service.spec => {
                tracing::info!(service = name, "service changed by another gateway");
                if let Err(error) = state
                    .gateway
                    .replace_upstream(name, service.spec.clone())
                    .await
                {
                    tracing::warn!(service = name, %error, "cannot change a service as another gateway did");
                }
            }
            Some(_) => {}
        }
    }
    let kept: HashSet<&str> = stored.iter().map(|service| service.name.as_str()).collect();
    for running in state.gateway.upstreams().iter() {
        let name = running.name();
        if from_file(name) || kept.contains(name) {
            continue;
        }
        tracing::info!(service = name, "service removed by another gateway");
        if let Err(error) = state.gateway.remove_upstream(name).await {
            tracing::warn!(service = name, %error, "cannot stop a service another gateway removed");
        }
    }
    Ok(())
}
