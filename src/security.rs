//! Checks that protect the gateway from the network: DNS-rebinding (`Host`/`Origin`), who is
//! calling (bearer tokens, and the identity provider's JWTs) and how fast they may guess
//! passwords, where services registered at run time may point, and how secrets are kept at
//! rest.

mod auth;
mod client_network;
mod egress;
pub mod identity;
mod login_throttle;
mod origin;
mod provider_login;
mod sealing;
mod token_endpoint;

pub use auth::{
    Identity, Lease, LeaseEnd, Owner, Principal, TokenCache, TokenEntry, TokenSource,
    api_key_principal, bearer, secret_hash,
};
pub use client_network::client_network;
pub use egress::check_url;
pub use identity::IdentityProvider;
pub use login_throttle::{LoginThrottle, Throttled};
pub use origin::{OriginPolicy, Rejection, is_localhost_name};
pub use provider_login::{LoginFailed, PROVIDER_CALLBACK_PATH, ProviderLogin};
pub use sealing::{SealError, Sealer};
pub use token_endpoint::post_form;

/// 128 random bits, as hex: an id nobody can guess (a sign-in address, an OAuth `state`, an
/// assertion's `jti`).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
