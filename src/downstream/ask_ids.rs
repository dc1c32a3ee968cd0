//! The ids of the requests a gateway puts to its clients (sampling, elicitation, roots),
//! which say which gateway asked.
//!
//! Behind a balancer with no affinity, a client's answer to such a request lands on any
//! gateway of the registry; its id tells that gateway which one asked, so that the answer is
//! passed on to it (`registry/answers.rs`). Two kinds, both `mcps-ask-<tag>-…`:
//! - `mcps-ask-<tag>-<n>`: the doors' own requests ([`super::plain_call::Asks`]);
//! - `mcps-ask-<tag>-r<n>`: rmcp's, which numbers its requests `n`. The session manager
//!   renames them on their way out ([`for_client`]) and the answers on their way back
//!   ([`from_client`]), so rmcp never sees a name.

use rmcp::model::RequestId;

pub use crate::registry::this_gateway;

/// What every id of ours begins with. rmcp's ids are numbers, so an answer to one of the
/// doors' requests is never taken for an answer to one of rmcp's.
const PREFIX: &str = "mcps-ask-";

/// What follows the tag in the name of rmcp's request `n`, before `n`.
const RMCP: &str = "r";

/// The id of the door's own request `n`.
pub fn own_request(n: u64) -> String {
    format!("{PREFIX}{}-{n}", this_gateway())
}

/// The tag of the gateway that asked request `id` (a JSON-RPC id's text), if it is one of
/// ours, of either kind.
pub fn asked_by(id: &str) -> Option<&str> {
    let rest = id.strip_prefix('"')?.strip_prefix(PREFIX)?;
    rest.split_once('-').map(|(tag, _)| tag)
}

/// Whether `id` (a JSON-RPC id's text) names one of rmcp's requests, asked here.
pub fn is_rmcps_here(id: &str) -> bool {
    id.strip_prefix('"')
        .and_then(|id| id.strip_suffix('"'))
        .and_then(rmcp_number)
        .is_some()
}

/// The name the client sees for rmcp's request `id`; `None` for an id rmcp did not number.
pub fn for_client(id: &RequestId) -> Option<RequestId> {
    match id {
        RequestId::Number(n) => Some(RequestId::String(
            format!("{PREFIX}{}-{RMCP}{n}", this_gateway()).into(),
        )),
        RequestId::String(_) => None,
    }
}

/// rmcp's number for the request a client's answer names `id`; `None` for any other id.
pub fn from_client(id: &RequestId) -> Option<RequestId> {
    match id {
        RequestId::String(name) => rmcp_number(name).map(RequestId::Number),
        RequestId::Number(_) => None,
    }
}

fn rmcp_number(name: &str) -> Option<i64> {
    let number = name
        .strip_prefix(PREFIX)?
        .strip_prefix(this_gateway())?
        .strip_prefix('-')?
        .strip_prefix(RMCP)?;
    // Only the form `for_client` writes: digits, no sign, no leading zero.
    let canonical = !number.is_empty()
        && number.bytes().all(|byte| byte.is_ascii_digit())
        && (number == "0" || !number.starts_with('0'));
    canonical.then(|| number.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_the_gateway_that_asked() {
        let text = serde_json::to_string(&own_request(7)).unwrap();
        assert_eq!(asked_by(&text), Some(this_gateway()));
        assert_eq!(this_gateway().len(), 12);
        assert_eq!(
            asked_by("\"mcps-ask-0123456789ab-7\""),
            Some("0123456789ab")
        );
        assert_eq!(
            asked_by("\"mcps-ask-0123456789ab-r7\""),
            Some("0123456789ab")
        );
        assert_eq!(asked_by("7"), None, "rmcp's own ids are numbers");
        assert_eq!(asked_by("\"something-else\""), None);
    }

    #[test]
    fn rmcps_ids_go_out_named_and_come_back_numbered() {
        let named = for_client(&RequestId::Number(42)).unwrap();
        let text = serde_json::to_string(&named).unwrap();
        assert_eq!(asked_by(&text), Some(this_gateway()));
        assert!(is_rmcps_here(&text));
        assert_eq!(from_client(&named), Some(RequestId::Number(42)));
        assert_eq!(for_client(&named), None, "a name is not renamed again");
    }

    #[test]
    fn only_rmcps_ids_asked_here_are_numbered_again() {
        let own = own_request(3);
        assert!(!is_rmcps_here(&serde_json::to_string(&own).unwrap()));
        assert_eq!(from_client(&RequestId::String(own.into())), None);
        let elsewhere = RequestId::String("mcps-ask-0123456789ab-r3".into());
        assert_eq!(from_client(&elsewhere), None, "another gateway's");
        assert_eq!(from_client(&RequestId::Number(3)), None);
        let tag = this_gateway();
        for odd in ["r", "r-1", "r+1", "r01", "r1x", "r99999999999999999999"] {
            let id = RequestId::String(format!("{PREFIX}{tag}-{odd}").into());
            assert_eq!(from_client(&id), None, "{odd}");
        }
    }
}
