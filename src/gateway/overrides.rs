//! Tool overrides that match nothing (see `config::ToolOverride`): a `tools:` entry naming no
//! tool its upstream or virtual server offers, or arguments the tool does not take. They are
//! logged when the catalog changes, once each, and fail `mcps check`.

use std::collections::HashSet;

use super::Gateway;
use crate::sync::lock;

impl Gateway {
    /// Every override that matches nothing, said with its place in the config.
    pub fn unmatched_overrides(&self) -> Vec<String> {
        let mut unmatched = Vec::new();
        for upstream in self.upstreams.load().iter() {
            // Checked once it has listed its tools.
            let state = upstream.state();
            if state.peer.is_none() {
                continue;
            }
            for (name, rule) in &upstream.config().tools {
                let key = format!("upstreams.{}.tools.{name}", upstream.name());
                match state.tools.iter().find(|tool| tool.name == *name) {
                    None => {
                        unmatched.push(format!("{key}: {} has no tool {name:?}", upstream.name()))
                    }
                    Some(tool) => {
                        let unknown = rule.unknown_arguments(tool);
                        if !unknown.is_empty() {
                            unmatched.push(format!("{key}: {name} takes no argument {unknown:?}"));
                        }
                    }
                }
            }
        }
        let full = self.catalog.load_full();
        let upstreams = self.upstreams.load();
        for (server, view) in self.views.load().iter() {
            // A tool of an upstream that is not up yet is missing for now, not for good.
            let all_up = upstreams
                .iter()
                .filter(|upstream| view.offers(upstream))
                .all(|upstream| upstream.state().peer.is_some());
            if !all_up {
                continue;
            }
            for (name, rule) in view.tool_overrides() {
                let key = format!("virtual_servers.{server}.tools.{name}");
                // Checked against the tool as the view gets it (the upstream's override
                // applied), before its own.
                let Some(entry) = full.route(name).filter(|entry| view.shows(entry)) else {
                    unmatched.push(format!("{key}: {server} offers no tool {name:?}"));
                    continue;
                };
                let unknown = rule.unknown_arguments(&entry.item);
                if !unknown.is_empty() {
                    unmatched.push(format!("{key}: {name} takes no argument {unknown:?}"));
                }
            }
        }
        unmatched
    }

    /// Logs the overrides that match nothing and were not logged yet.
    pub(super) fn warn_unmatched_overrides(&self) {
        let now: HashSet<String> = self.unmatched_overrides().into_iter().collect();
        let mut warned = lock(&self.warned_overrides);
        for problem in now.difference(&warned) {
            tracing::warn!("a tool override matches nothing: {problem}");
        }
        *warned = now;
    }
}
