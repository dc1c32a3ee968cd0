//! Checks that protect the gateway from the network: DNS-rebinding (`Host`/`Origin`) today,
//! authentication and egress/spawn policies as they arrive.

mod origin;

pub use origin::{OriginPolicy, Rejection};
