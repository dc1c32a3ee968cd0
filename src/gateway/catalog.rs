//! The in-memory catalog: every ready upstream's tools, prompts, resources and templates as
//! clients see them.
//!
//! A catalog is immutable; the gateway builds a new one whenever an upstream changes and swaps
//! it in whole, so readers never lock. Named items are sorted by exposed name (a lookup is a
//! binary search) and resources by URI; page cursors are the last key of the previous page.

mod cursor;
mod named;
mod resources;

use std::sync::Arc;

use rmcp::model::{Prompt, Tool};

pub use named::{Entry, NamedIndex};
pub use resources::ResourceIndex;

use crate::upstream::Upstream;

/// A tool as clients see it, and where it lives.
pub type CatalogTool = Entry<Tool>;

/// Two upstream items that ended up with the same exposed name or URI; the later upstream's
/// (or, in a virtual server, the later name's) is not exposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    pub kind: &'static str,
    pub exposed: String,
    pub kept_upstream: String,
    pub kept_item: String,
    pub dropped_upstream: String,
    pub dropped_item: String,
    /// What the operator can change to expose both.
    pub remedy: &'static str,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:?}: upstream '{}' {:?} is hidden by upstream '{}' {:?}; {}",
            self.kind,
            self.exposed,
            self.dropped_upstream,
            self.dropped_item,
            self.kept_upstream,
            self.kept_item,
            self.remedy
        )
    }
}

/// Which parts of the catalog differ between two builds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

impl Changed {
    pub fn any(self) -> bool {
        self.tools || self.prompts || self.resources
    }
}

/// An immutable snapshot of what the gateway offers.
#[derive(Debug, Default)]
pub struct Catalog {
    pub tools: NamedIndex<Tool>,
    pub prompts: NamedIndex<Prompt>,
    pub resources: ResourceIndex,
    collisions: Vec<Collision>,
    /// Its tools' search index, built at the first `search_tools` (see `tool_search`).
    search: std::sync::OnceLock<super::tool_search::Index>,
}

impl Catalog {
    /// Builds the catalog from the ready upstreams, in config order (earlier wins a name).
    pub fn build(upstreams: &[Arc<Upstream>]) -> Self {
        let mut collisions = Vec::new();
        let tools = NamedIndex::build(upstreams, &mut collisions);
        let prompts = NamedIndex::build(upstreams, &mut collisions);
        let resources = ResourceIndex::build(upstreams, &mut collisions);
        Self {
            tools,
            prompts,
            resources,
            collisions,
            search: std::sync::OnceLock::new(),
        }
    }

    /// Its tools' search index, built once.
    pub(super) fn search_index(&self) -> &super::tool_search::Index {
        self.search
            .get_or_init(|| super::tool_search::Index::of(self.tools()))
    }

    /// Every exposed tool, sorted by name.
    pub fn tools(&self) -> &[CatalogTool] {
        self.tools.entries()
    }

    /// The tool behind an exposed name.
    pub fn route(&self, exposed: &str) -> Option<&CatalogTool> {
        self.tools.route(exposed)
    }

    /// The part of this catalog a virtual server offers, under its names.
    /// Its collisions are the names a rename made clash (the whole catalog's own clashes
    /// are reported with it).
    pub fn narrowed(&self, view: &super::View) -> Self {
        let mut collisions = Vec::new();
        Self {
            tools: self
                .tools
                .narrowed(|entry| view.tool(entry), &mut collisions),
            prompts: self.prompts.narrowed(
                |entry| view.offers(&entry.upstream).then(|| entry.clone()),
                &mut collisions,
            ),
            resources: self.resources.retain(|upstream| view.offers(upstream)),
            collisions,
            search: std::sync::OnceLock::new(),
        }
    }

    /// Name and URI clashes found while building.
    pub fn collisions(&self) -> &[Collision] {
        &self.collisions
    }

    /// The clashes `previous` did not have. Catalogs are rebuilt often (at start-up, on
    /// every re-list): reporting only these reports each clash once.
    pub fn new_collisions<'a>(
        &'a self,
        previous: Option<&'a Catalog>,
    ) -> impl Iterator<Item = &'a Collision> {
        self.collisions.iter().filter(move |collision| {
            previous.is_none_or(|previous| !previous.collisions.contains(collision))
        })
    }

    /// What clients would see differently in `other`.
    pub fn changes_to(&self, other: &Catalog) -> Changed {
        Changed {
            tools: !self.tools.same_as(&other.tools),
            prompts: !self.prompts.same_as(&other.prompts),
            resources: !self.resources.same_as(&other.resources),
        }
    }

    /// How many tools an upstream contributes.
    pub fn tool_count(&self, upstream: &Upstream) -> usize {
        self.tools()
            .iter()
            .filter(|entry| std::ptr::eq(entry.upstream.as_ref(), upstream))
            .count()
    }
}
