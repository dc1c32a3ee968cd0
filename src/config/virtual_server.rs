//! `virtual_servers:` named subsets of the catalog, each served at its own endpoint
//! (`/mcp/{name}`, `/ws/{name}`, `mcps stdio --server NAME`) and assignable to API keys.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::naming;

/// One virtual server: which upstreams, which of their tools, and under which names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualServerConfig {
    /// The upstreams whose tools, prompts and resources it offers; empty offers every one.
    #[serde(default)]
    pub upstreams: Vec<String>,
    /// Tool name patterns (`*` any run of characters, `?` one, `[abc]` a class), matched
    /// against the gateway's names (`{upstream}__{tool}`). Empty allows every tool.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Patterns of tools left out even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
    /// New names, by the gateway's name: clients of this server see and call the new one.
    #[serde(default)]
    pub rename: IndexMap<String, String>,
    /// How tools are offered and called through this server, by the gateway's name (after
    /// the upstream's own `tools:`): see [`super::ToolOverride`].
    #[serde(default)]
    pub tools: IndexMap<String, super::ToolOverride>,
    /// Offer this server's clients three tools instead of its catalog: `search_tools`,
    /// `call_tool` and `list_tool_names`, which search and call only what it offers.
    #[serde(default)]
    pub tool_search: bool,
}

/// A virtual server's name: it becomes a path segment, so `^[a-z0-9][a-z0-9_-]{0,63}$`.
/// `mcp` is taken (`/ws/mcp` is `/ws`).
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    name != "mcp"
        && !bytes.is_empty()
        && bytes.len() <= 64
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// Compiles name patterns the way views match them.
pub fn pattern_set(patterns: &[String]) -> Result<globset::GlobSet, globset::Error> {
    let mut set = globset::GlobSetBuilder::new();
    for pattern in patterns {
        set.add(globset::Glob::new(pattern)?);
    }
    set.build()
}

pub(super) fn validate(name: &str, server: &VirtualServerConfig) -> Result<(), ConfigError> {
    let key = format!("virtual_servers.{name}");
    if !is_valid_name(name) {
        return Err(ConfigError::invalid(
            key,
            "a virtual server name must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit, and not \"mcp\"",
        ));
    }
    for (field, patterns) in [("allow", &server.allow), ("deny", &server.deny)] {
        for (index, pattern) in patterns.iter().enumerate() {
            if let Err(error) = globset::Glob::new(pattern) {
                return Err(ConfigError::invalid(
                    format!("{key}.{field}[{index}]"),
                    format!("{pattern:?} is not a valid pattern: {}", error.kind()),
                ));
            }
        }
    }
    let mut targets = std::collections::HashSet::new();
    for (from, to) in &server.rename {
        let key = format!("{key}.rename.{from}");
        if !naming::is_client_safe(to) {
            return Err(ConfigError::invalid(
                key,
                format!(
                    "{to:?} is not a name clients accept (1-{} characters of a-z, A-Z, 0-9, '_' and '-')",
                    naming::MAX_NAME_LEN
                ),
            ));
        }
        if !targets.insert(to) {
            return Err(ConfigError::invalid(
                key,
                format!("two tools are renamed to {to:?}"),
            ));
        }
    }
    for (tool, rule) in &server.tools {
        let key = format!("{key}.tools.{tool}");
        rule.validate(&key)?;
        if rule.name.is_some() && server.rename.contains_key(tool) {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                "the tool is in `rename` too: name it in one place",
            ));
        }
        if let Some(to) = &rule.name
            && !targets.insert(to)
        {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format!("two tools are renamed to {to:?}"),
            ));
        }
    }
    Ok(())
}
