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
mod sealing;

pub use auth::{
    Identity, Lease, LeaseEnd, Principal, TokenCache, TokenEntry, api_key_principal, bearer,
    secret_hash,
};
pub use client_network::client_network;
pub use egress::check_url;
pub use identity::IdentityProvider;
pub use login_throttle::{LoginThrottle, Throttled};
pub use origin::{OriginPolicy, Rejection};
pub use sealing::{SealError, Sealer};
