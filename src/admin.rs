//! The REST side surface under `/api/v1`, for people and scripts, with its OpenAPI document
//! (`/openapi.json`) and viewers (`/docs`, `/redoc`); and the web console at `/ui`.
//!
//! Every route needs a bearer token (a login token or an API key) except health and login.
//! Tokens are checked against an in-memory copy of the registry's ([`TokenCache`]); the
//! registry itself is only touched by the routes that read or change it, never by a proxied
//! call.

mod auth;
mod browser;
mod calls;
mod connect;
mod console;
mod docs;
mod error;
mod oauth;
mod proxy;
pub mod replicas;
mod services;
mod system;
mod tools;
mod uploads;

use std::{path::PathBuf, sync::Arc, time::Instant};

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use system::{Health, health};

use crate::{
    config::Config,
    gateway::Gateway,
    registry::{Registry, RegistryError},
    security::{IdentityProvider, ProviderLogin, TokenCache},
};

/// What the routes share.
pub struct AdminState {
    pub gateway: Arc<Gateway>,
    pub registry: Registry,
    pub tokens: Arc<TokenCache>,
    /// With `auth.oauth`: the checker of the identity provider's access tokens.
    pub identity: Option<Arc<IdentityProvider>>,
    /// With `auth.oauth.client_id`: how the sign-in page learns who a user of the identity
    /// provider is.
    pub provider_login: Option<Arc<ProviderLogin>>,
    pub config: Config,
    /// Where uploads are stored (beside the database).
    pub data_dir: PathBuf,
    pub started: Instant,
    /// Serializes changes to services, so two requests about one name cannot interleave
    /// its stop and start.
    pub services_lock: tokio::sync::Mutex<()>,
    /// Reloads the config file, when the gateway was started from one.
    pub reloader: Option<Arc<crate::reload::Reloader>>,
    /// Slows down password guessing at login.
    pub login_throttle: crate::security::LoginThrottle,
}

/// The router for `/api/v1`, `/openapi.json`, `/docs`, `/redoc` and the console (`/`, `/ui`).
pub fn router(state: Arc<AdminState>) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(docs::base())
        .merge(auth::routes())
        .merge(system::routes())
        .merge(services::routes())
        .merge(oauth::routes())
        .merge(tools::routes())
        .merge(proxy::routes())
        .merge(calls::routes())
        .split_for_parts();
    router
        .with_state(state.clone())
        .merge(docs::viewers(openapi))
        .merge(oauth::callback_route().with_state(state.clone()))
        .merge(connect::route().with_state(state.clone()))
        .merge(console::routes().with_state(state.clone()))
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::not_found(format!("no route for {}", uri.path()))
        })
        .method_not_allowed_fallback(|method: axum::http::Method| async move {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed here"),
            )
        })
        .layer(system::upload_body_limit(&state.config))
}

/// Makes the first user on first run, and loads the tokens the gateway accepts.
///
/// The first user is `admin`, with `MCPS_ADMIN_PASSWORD` as password when set, else a random
/// one printed once to stderr (never to the log): there is no default password to forget to
/// change.
pub async fn bootstrap(registry: &Registry, tokens: &TokenCache) -> Result<(), RegistryError> {
    if !registry.has_users().await? {
        let (password, generated) = match std::env::var("MCPS_ADMIN_PASSWORD") {
            Ok(password) if !password.is_empty() => (password, false),
            _ => (random_password(), true),
        };
        match registry.create_user("admin", &password, true).await {
            // Another gateway on the same database made it first: its password stands.
            Err(RegistryError::Conflict(_)) => {}
            Err(error) => return Err(error),
            Ok(_) if generated => {
                eprintln!(
                    "\nCreated the first user of {}:\n    username: admin\n    password: {password}\nIt is shown this once. Log in at POST /api/v1/auth/login.\n",
                    registry.place()
                );
            }
            Ok(_) => {
                tracing::info!("created user admin with the password from MCPS_ADMIN_PASSWORD")
            }
        }
    }
    registry.forget_expired_tokens().await?;
    for token in registry.active_tokens().await? {
        auth::accept(tokens, &token);
    }
    Ok(())
}

/// 20 characters from a 56-character alphabet without look-alikes: about 116 bits.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // Bytes at or above the largest multiple of the alphabet's size are skipped, so every
    // character is equally likely.
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    let mut password = String::new();
    while password.len() < 20 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        password.extend(
            bytes
                .iter()
                .filter(|byte| **byte < limit)
                .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
                .take(20 - password.len()),
        );
    }
    password
}
