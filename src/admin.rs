//! The REST side surface under `/api/v1`. Today: health.

use serde::Serialize;

use crate::gateway::Gateway;

/// `GET /api/v1/system/health`: 200 while the gateway serves, with every upstream's state.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok` when every enabled upstream is ready, `starting` while any starts, else `degraded`.
    pub status: &'static str,
    pub version: &'static str,
    pub upstreams: Vec<UpstreamHealth>,
}

/// One upstream in [`Health`].
#[derive(Debug, Serialize)]
pub struct UpstreamHealth {
    pub name: String,
    pub state: &'static str,
    pub transport: &'static str,
    pub tools: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn health(gateway: &Gateway) -> Health {
    let catalog = gateway.catalog();
    let upstreams: Vec<UpstreamHealth> = gateway
        .upstreams()
        .iter()
        .map(|upstream| {
            let state = upstream.state();
            UpstreamHealth {
                name: upstream.name().to_owned(),
                state: state.phase.as_str(),
                transport: upstream.config().transport_kind().as_str(),
                tools: catalog.tool_count(upstream),
                protocol_version: state.protocol_version.as_ref().map(|v| v.to_string()),
                error: match &state.phase {
                    crate::upstream::Phase::Failed(reason) => Some(reason.clone()),
                    _ => None,
                },
            }
        })
        .collect();
    let status = if upstreams.iter().any(|u| u.state == "starting") {
        "starting"
    } else if upstreams
        .iter()
        .all(|u| u.state == "ready" || u.state == "disabled")
    {
        "ok"
    } else {
        "degraded"
    };
    Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        upstreams,
    }
}
