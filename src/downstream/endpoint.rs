//! Which MCP endpoint a path is, and which virtual server a request on it is for.
//!
//! `/mcp` and `/ws` (also `/ws/mcp`) serve the whole catalog; `/mcp/{name}` and `/ws/{name}`
//! serve virtual server `name`. An API key bound to a virtual server is served that one on
//! the plain endpoints and refused on any other's.

use std::sync::Arc;

use crate::{gateway::Gateway, security::Principal};

/// An MCP endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// Streamable HTTP, for the whole catalog or one virtual server.
    Http(Option<&'a str>),
    /// WebSocket, likewise.
    WebSocket(Option<&'a str>),
}

impl<'a> Endpoint<'a> {
    /// The endpoint at `path`, if it is one.
    pub fn of(path: &'a str) -> Option<Self> {
        match path {
            "/mcp" | "/mcp/" => return Some(Self::Http(None)),
            "/ws" | "/ws/" | "/ws/mcp" => return Some(Self::WebSocket(None)),
            _ => {}
        }
        let (kind, rest): (fn(Option<&'a str>) -> Self, _) =
            if let Some(rest) = path.strip_prefix("/mcp/") {
                (Self::Http, rest)
            } else if let Some(rest) = path.strip_prefix("/ws/") {
                (Self::WebSocket, rest)
            } else {
                return None;
            };
        let name = rest.strip_suffix('/').unwrap_or(rest);
        (!name.is_empty() && !name.contains('/')).then(|| kind(Some(name)))
    }

    fn virtual_server(self) -> Option<&'a str> {
        match self {
            Self::Http(name) | Self::WebSocket(name) => name,
        }
    }
}

/// Why a request may not use the endpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// The path names a virtual server the configuration does not have.
    Unknown(String),
    /// The caller's key is bound to another virtual server.
    OtherServer { bound: String },
    /// The caller's key is bound to a virtual server a reload has since removed: it is
    /// served nothing rather than, by default, everything.
    BoundServerGone { bound: String },
}

impl std::fmt::Display for ScopeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(name) => write!(f, "no virtual server named {name:?}"),
            Self::OtherServer { bound } => write!(
                f,
                "this key is bound to virtual server {bound:?}: use /mcp/{bound} (or /mcp)"
            ),
            Self::BoundServerGone { bound } => write!(
                f,
                "this key is bound to virtual server {bound:?}, which the configuration no longer has: restore it, or use a key bound to another"
            ),
        }
    }
}

/// The virtual server a request on `endpoint` by `principal` is served, if any.
pub fn scope(
    gateway: &Gateway,
    endpoint: Endpoint<'_>,
    principal: Option<&Principal>,
) -> Result<Option<Arc<str>>, ScopeRefusal> {
    let named = endpoint.virtual_server();
    if let Some(name) = named
        && gateway.view(name).is_none()
    {
        return Err(ScopeRefusal::Unknown(name.to_owned()));
    }
    let bound = principal.and_then(|principal| principal.virtual_server.as_deref());
    match (named, bound) {
        (Some(named), Some(bound)) if named != bound => Err(ScopeRefusal::OtherServer {
            bound: bound.to_owned(),
        }),
        (None, Some(bound)) if gateway.view(bound).is_none() => {
            Err(ScopeRefusal::BoundServerGone {
                bound: bound.to_owned(),
            })
        }
        (named, bound) => Ok(named.or(bound).map(Arc::from)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_endpoints() {
        assert_eq!(Endpoint::of("/mcp"), Some(Endpoint::Http(None)));
        assert_eq!(Endpoint::of("/ws/mcp"), Some(Endpoint::WebSocket(None)));
        assert_eq!(
            Endpoint::of("/mcp/research"),
            Some(Endpoint::Http(Some("research")))
        );
        assert_eq!(
            Endpoint::of("/mcp/research/"),
            Some(Endpoint::Http(Some("research")))
        );
        assert_eq!(
            Endpoint::of("/ws/ops"),
            Some(Endpoint::WebSocket(Some("ops")))
        );
        assert_eq!(Endpoint::of("/mcp/a/b"), None);
        assert_eq!(Endpoint::of("/mcpx"), None);
        assert_eq!(Endpoint::of("/api/v1/tools"), None);
    }
}
