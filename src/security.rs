//! Checks that protect the gateway from the network: DNS-rebinding (`Host`/`Origin`), who is
//! calling (bearer tokens), and where services registered at run time may point.

mod auth;
mod egress;
mod origin;

pub use auth::{Principal, TokenCache, TokenEntry, bearer, secret_hash};
pub use egress::check_url;
pub use origin::{OriginPolicy, Rejection};
