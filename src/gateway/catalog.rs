//! The in-memory catalog: every ready upstream's tools under their exposed names.
//!
//! A catalog is immutable; the gateway builds a new one whenever an upstream changes and swaps
//! it in whole, so readers never lock. Tools are kept sorted by exposed name: a lookup is a
//! binary search, and a page cursor is simply the last name of the previous page, which stays
//! meaningful when the catalog changes between pages.

use std::{collections::HashMap, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rmcp::model::Tool;

use super::naming;
use crate::{error::GatewayError, upstream::Upstream};

/// One tool as clients see it, and where it really lives.
#[derive(Debug, Clone)]
pub struct CatalogTool {
    /// The upstream's definition with `name` replaced by the exposed name.
    pub tool: Tool,
    pub upstream: Arc<Upstream>,
    /// The name the upstream knows it by.
    pub original: String,
}

impl CatalogTool {
    pub fn exposed_name(&self) -> &str {
        &self.tool.name
    }
}

/// Two upstream tools that ended up with the same exposed name; the later one is not exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub exposed: String,
    pub kept_upstream: String,
    pub kept_tool: String,
    pub dropped_upstream: String,
    pub dropped_tool: String,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "tool name {:?}: upstream '{}' tool {:?} is hidden by upstream '{}' tool {:?}; give one of them a distinct `prefix`",
            self.exposed,
            self.dropped_upstream,
            self.dropped_tool,
            self.kept_upstream,
            self.kept_tool
        )
    }
}

/// An immutable snapshot of what the gateway offers.
#[derive(Debug, Default)]
pub struct Catalog {
    tools: Vec<CatalogTool>,
    collisions: Vec<Collision>,
}

impl Catalog {
    /// Builds the catalog from the ready upstreams, in config order (earlier wins a name).
    pub fn build(upstreams: &[Arc<Upstream>]) -> Self {
        let mut tools: Vec<CatalogTool> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut collisions = Vec::new();
        for upstream in upstreams {
            let state = upstream.state();
            if state.peer.is_none() {
                continue;
            }
            for tool in state.tools.iter() {
                let exposed = naming::exposed_name(upstream.prefix(), &tool.name);
                if let Some(&at) = index.get(&exposed) {
                    let kept: &CatalogTool = &tools[at];
                    collisions.push(Collision {
                        exposed,
                        kept_upstream: kept.upstream.name().to_owned(),
                        kept_tool: kept.original.clone(),
                        dropped_upstream: upstream.name().to_owned(),
                        dropped_tool: tool.name.to_string(),
                    });
                    continue;
                }
                let mut exposed_tool = tool.clone();
                exposed_tool.name = exposed.clone().into();
                index.insert(exposed, tools.len());
                tools.push(CatalogTool {
                    tool: exposed_tool,
                    upstream: upstream.clone(),
                    original: tool.name.to_string(),
                });
            }
        }
        tools.sort_unstable_by(|a, b| a.exposed_name().cmp(b.exposed_name()));
        Self { tools, collisions }
    }

    /// Every exposed tool, sorted by name.
    pub fn tools(&self) -> &[CatalogTool] {
        &self.tools
    }

    /// Name clashes found while building.
    pub fn collisions(&self) -> &[Collision] {
        &self.collisions
    }

    /// Whether clients would see the same tools (names and definitions) in both.
    pub fn same_tools(&self, other: &Catalog) -> bool {
        self.tools
            .iter()
            .map(|entry| &entry.tool)
            .eq(other.tools.iter().map(|entry| &entry.tool))
    }

    /// The tool behind an exposed name.
    pub fn route(&self, exposed: &str) -> Option<&CatalogTool> {
        self.tools
            .binary_search_by(|entry| entry.exposed_name().cmp(exposed))
            .ok()
            .map(|at| &self.tools[at])
    }

    /// One page of at most `size` tools after `cursor`, and the cursor of the next page.
    pub fn page(
        &self,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<(Vec<Tool>, Option<String>), GatewayError> {
        let start = match cursor {
            None => 0,
            Some(cursor) => {
                let last = decode_cursor(cursor).ok_or_else(|| GatewayError::InvalidCursor {
                    cursor: cursor.to_owned(),
                })?;
                self.tools
                    .partition_point(|entry| entry.exposed_name() <= last.as_str())
            }
        };
        let end = self.tools.len().min(start.saturating_add(size.max(1)));
        let page: Vec<Tool> = self.tools[start..end]
            .iter()
            .map(|entry| entry.tool.clone())
            .collect();
        let next =
            (end < self.tools.len()).then(|| encode_cursor(self.tools[end - 1].exposed_name()));
        Ok((page, next))
    }
}

fn encode_cursor(last_name: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_name)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        assert_eq!(
            decode_cursor(&encode_cursor("a__b")).as_deref(),
            Some("a__b")
        );
        assert_eq!(decode_cursor("***"), None);
    }
}
