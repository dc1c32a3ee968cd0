//! The gateway's state as the metrics gauges show it, read at each scrape.

use super::Gateway;
use crate::metrics::{StateGauges, UpstreamGauge};

impl Gateway {
    /// The upstreams, sessions and tools now, for `/metrics`.
    pub fn state_gauges(&self) -> StateGauges {
        let catalog = self.catalog();
        let upstreams = self
            .upstreams()
            .iter()
            .map(|upstream| UpstreamGauge {
                name: upstream.name().to_owned(),
                phase: upstream.state().phase.as_str(),
                tools: catalog.tool_count(upstream),
            })
            .collect();
        StateGauges {
            upstreams,
            sessions: self.session_count(),
            tools: catalog.tools().len(),
        }
    }
}
