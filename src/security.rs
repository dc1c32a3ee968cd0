//! Checks that protect the gateway from the network: DNS-rebinding (`Host`/`Origin`) and who
//! is calling (bearer tokens); egress and spawn policies as they arrive.

mod auth;
mod origin;

pub use auth::{Principal, TokenCache, TokenEntry, bearer, secret_hash};
pub use origin::{OriginPolicy, Rejection};
