//! Virtual servers as the gateway serves them: a [`View`] narrows the catalog to some
//! upstreams and tools, under names of its own. A client of a view lists only its tools and
//! can call nothing else: routing goes through the narrowed catalog, so a tool outside it is
//! as unknown as one that does not exist.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use globset::GlobSet;
use rmcp::model::Tool;

use super::{Catalog, catalog::Entry};
use crate::{
    config::{ToolOverride, VirtualServerConfig, virtual_server::pattern_set},
    sync::lock,
    upstream::Upstream,
};

/// One virtual server, compiled.
pub struct View {
    name: String,
    /// `None` offers every upstream.
    upstreams: Option<HashSet<String>>,
    /// `None` allows every tool.
    allow: Option<GlobSet>,
    deny: GlobSet,
    /// New names by the gateway's names.
    rename: HashMap<String, String>,
    /// Clients list three tools that search the catalog instead of the catalog.
    tool_search: bool,
    /// Overrides by the gateway's names.
    tools: HashMap<String, ToolOverride>,
    /// The last catalog narrowed and the result: catalogs change far less often than
    /// clients list and call.
    narrowed: Mutex<Option<(Arc<Catalog>, Arc<Catalog>)>>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("name", &self.name).finish()
    }
}

impl View {
    /// `config` has been validated, so its patterns compile.
    pub fn new(name: &str, config: &VirtualServerConfig) -> Result<Self, globset::Error> {
        Ok(Self {
            name: name.to_owned(),
            upstreams: (!config.upstreams.is_empty())
                .then(|| config.upstreams.iter().cloned().collect()),
            allow: if config.allow.is_empty() {
                None
            } else {
                Some(pattern_set(&config.allow)?)
            },
            deny: pattern_set(&config.deny)?,
            rename: config
                .rename
                .iter()
                .map(|(from, to)| (from.clone(), to.clone()))
                .collect(),
            tool_search: config.tool_search,
            tools: config
                .tools
                .iter()
                .map(|(name, rule)| (name.clone(), rule.clone()))
                .collect(),
            narrowed: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its tool overrides, by the gateway's names.
    pub fn tool_overrides(&self) -> impl Iterator<Item = (&String, &ToolOverride)> {
        self.tools.iter()
    }

    /// Whether its clients search the catalog instead of listing it.
    pub fn tool_search(&self) -> bool {
        self.tool_search
    }

    /// Whether this view offers what `upstream` has.
    pub fn offers(&self, upstream: &Upstream) -> bool {
        self.upstreams
            .as_ref()
            .is_none_or(|names| names.contains(upstream.name()))
    }

    /// Whether this view shows the catalog's tool `entry`.
    pub(super) fn shows(&self, entry: &Entry<Tool>) -> bool {
        let name = entry.exposed_name();
        self.offers(&entry.upstream)
            && self.allow.as_ref().is_none_or(|allow| allow.is_match(name))
            && !self.deny.is_match(name)
    }

    /// The tool as this view shows it, if it shows it.
    pub(super) fn tool(&self, entry: &Entry<Tool>) -> Option<Entry<Tool>> {
        if !self.shows(entry) {
            return None;
        }
        let name = entry.exposed_name();
        let mut entry = entry.clone();
        if let Some(renamed) = self.rename.get(name) {
            entry.item.name = renamed.clone().into();
        }
        if let Some(rule) = self.tools.get(name) {
            rule.apply_to_tool(&mut entry.item);
            if let Some(renamed) = &rule.name {
                entry.item.name = renamed.clone().into();
            }
            entry.overrides.push(rule.clone());
        }
        Some(entry)
    }

    /// `full` narrowed to this view (computed once per catalog).
    pub fn catalog(&self, full: &Arc<Catalog>) -> Arc<Catalog> {
        let mut cached = lock(&self.narrowed);
        if let Some((source, narrowed)) = cached.as_ref()
            && Arc::ptr_eq(source, full)
        {
            return narrowed.clone();
        }
        let narrowed = Arc::new(full.narrowed(self));
        let previous = cached.as_ref().map(|(_, previous)| previous.as_ref());
        for collision in narrowed.new_collisions(previous) {
            tracing::warn!(virtual_server = %self.name, "{collision}");
        }
        *cached = Some((full.clone(), narrowed.clone()));
        narrowed
    }
}

/// Every configured view, by name.
pub type Views = HashMap<String, Arc<View>>;

/// Compiles the views of a validated configuration.
pub fn compile(config: &crate::config::Config) -> Views {
    config
        .virtual_servers
        .iter()
        .filter_map(|(name, server)| match View::new(name, server) {
            Ok(view) => Some((name.clone(), Arc::new(view))),
            Err(error) => {
                // Validation compiled the same patterns; this cannot happen.
                tracing::error!(virtual_server = %name, %error, "virtual server left out");
                None
            }
        })
        .collect()
}
