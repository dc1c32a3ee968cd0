//! What a 2026-07-28 request to an HTTP upstream says again in its headers (SEP-2243), beside
//! its method: what it names (`Mcp-Name`), and the arguments its tool's input schema marks
//! `x-mcp-header` (`Mcp-Param-<header>`), so that a proxy or load balancer in front of the
//! upstream can route on them without reading the body. The upstream refuses a call whose
//! headers and body disagree (-32020), so they are read from the arguments as sent
//! (`mcp_headers::arguments` reads them).

use serde_json::{Map, Value};

use super::Upstream;
use crate::mcp_headers::arguments;

/// A request's words for its headers.
#[derive(Debug, Clone)]
pub struct Mirrored {
    /// What it names: a tool's or prompt's name, a resource's URI, a task's id.
    pub name: Option<String>,
    /// Its arguments that go in headers too: each header's name after `Mcp-Param-`, and the
    /// argument's value as text (the lane writes it in Base64 when a header cannot carry it).
    pub arguments: Vec<(String, String)>,
}

impl Upstream {
    /// The arguments of a call of its tool `tool` that go in headers too, by the tool's
    /// definition as this upstream listed it (rmcp's client left out those whose
    /// annotations are invalid); none for a tool it did not list, or that marks none.
    pub fn header_arguments(
        &self,
        tool: &str,
        arguments: &Map<String, Value>,
    ) -> Vec<(String, String)> {
        let state = self.state.load();
        state
            .marking_tools
            .iter()
            .map(|&at| &state.tools[at])
            .find(|listed| listed.name == tool)
            .map(|listed| {
                arguments::marked(&listed.input_schema, Some(arguments))
                    .into_iter()
                    .filter_map(|marked| Some((marked.header.to_owned(), marked.text?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}
