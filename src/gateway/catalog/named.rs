//! Tools and prompts: items clients know by a name we give them (`{prefix}{name}`, made safe).

use std::{collections::HashMap, sync::Arc};

use rmcp::model::{Prompt, Tool};

use super::{Collision, cursor};
use crate::{
    config::ToolOverride,
    error::GatewayError,
    mcp_headers::arguments,
    naming,
    upstream::{Upstream, UpstreamState},
};

/// An item that has a name clients call it by.
pub trait Named: Clone + PartialEq {
    /// What kind of item, for collision reports.
    const KIND: &'static str;
    fn name(&self) -> &str;
    fn set_name(&mut self, name: String);
    /// This kind of item in an upstream's snapshot.
    fn of(state: &UpstreamState) -> &[Self];
    /// The upstream's override of this item (its `tools:`), if it has one.
    fn override_in(&self, _upstream: &Upstream) -> Option<ToolOverride> {
        None
    }
    /// Shows this item as `rule` says, but for its name.
    fn apply(&mut self, _rule: &ToolOverride) {}
    /// Whether its input schema marks an argument for a header (SEP-2243).
    fn marks_headers(&self) -> bool {
        false
    }
}

impl Named for Tool {
    const KIND: &'static str = "tool";
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name.into();
    }
    fn of(state: &UpstreamState) -> &[Self] {
        &state.tools
    }
    fn override_in(&self, upstream: &Upstream) -> Option<ToolOverride> {
        upstream.config().tools.get(self.name.as_ref()).cloned()
    }
    fn apply(&mut self, rule: &ToolOverride) {
        rule.apply_to_tool(self);
    }
    fn marks_headers(&self) -> bool {
        arguments::declared(&self.input_schema)
    }
}

impl Named for Prompt {
    const KIND: &'static str = "prompt";
    fn name(&self) -> &str {
        &self.name
    }
    fn set_name(&mut self, name: String) {
        self.name = name;
    }
    fn of(state: &UpstreamState) -> &[Self] {
        &state.prompts
    }
}

/// One item as clients see it, and where it really lives.
#[derive(Debug, Clone)]
pub struct Entry<T> {
    /// The upstream's definition under its exposed name.
    pub item: T,
    pub upstream: Arc<Upstream>,
    /// The name the upstream knows it by.
    pub original: String,
    /// How it is offered and called: the upstream's override, then a virtual server's.
    pub overrides: Vec<ToolOverride>,
    /// [`Named::marks_headers`] of `item`, worked out where an entry is made (`build`, and
    /// again in `narrowed`, after a view has changed it), not on every call of it.
    marks_headers: bool,
}

impl<T: Named> Entry<T> {
    pub fn exposed_name(&self) -> &str {
        self.item.name()
    }

    /// Whether the item as clients see it marks an argument for a header (SEP-2243).
    pub fn marks_headers(&self) -> bool {
        self.marks_headers
    }

    /// The clash of this entry with `upstream`'s `item`, which wanted its name and is left out.
    fn hides(&self, upstream: &Upstream, item: &str, remedy: &'static str) -> Collision {
        Collision {
            kind: T::KIND,
            exposed: self.exposed_name().to_owned(),
            kept_upstream: self.upstream.name().to_owned(),
            kept_item: self.original.clone(),
            dropped_upstream: upstream.name().to_owned(),
            dropped_item: item.to_owned(),
            remedy,
        }
    }
}

/// Every ready upstream's items of one kind, sorted by exposed name.
#[derive(Debug)]
pub struct NamedIndex<T> {
    entries: Vec<Entry<T>>,
}

impl<T> Default for NamedIndex<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<T: Named> NamedIndex<T> {
    /// Builds the index in config order: on a clash the earlier upstream keeps the name.
    pub fn build(upstreams: &[Arc<Upstream>], collisions: &mut Vec<Collision>) -> Self {
        let mut entries: Vec<Entry<T>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for upstream in upstreams {
            let state = upstream.state();
            if state.peer.is_none() {
                continue;
            }
            for item in T::of(&state) {
                let rule = item.override_in(upstream);
                let base = rule
                    .as_ref()
                    .and_then(|rule| rule.name.as_deref())
                    .unwrap_or(item.name());
                let exposed = naming::exposed_name(upstream.prefix(), base);
                if let Some(&at) = index.get(&exposed) {
                    collisions.push(entries[at].hides(
                        upstream,
                        item.name(),
                        "give one of them a distinct `prefix`",
                    ));
                    continue;
                }
                let mut exposed_item = item.clone();
                exposed_item.set_name(exposed.clone());
                if let Some(rule) = &rule {
                    exposed_item.apply(rule);
                }
                index.insert(exposed, entries.len());
                entries.push(Entry {
                    marks_headers: exposed_item.marks_headers(),
                    item: exposed_item,
                    upstream: upstream.clone(),
                    original: item.name().to_owned(),
                    overrides: rule.into_iter().collect(),
                });
            }
        }
        entries.sort_unstable_by(|a, b| a.exposed_name().cmp(b.exposed_name()));
        Self { entries }
    }

    /// The entries `narrow` keeps, each as it returns it (renamed, perhaps). When two end
    /// up with one name, the first in the gateway's name order keeps it and the clash goes
    /// to `collisions`.
    pub fn narrowed(
        &self,
        narrow: impl Fn(&Entry<T>) -> Option<Entry<T>>,
        collisions: &mut Vec<Collision>,
    ) -> Self {
        let mut narrowed: Vec<Entry<T>> = self
            .entries
            .iter()
            .filter_map(narrow)
            .map(|mut entry| {
                entry.marks_headers = entry.item.marks_headers();
                entry
            })
            .collect();
        // Stable: of two entries under one name, the one first in `self` stays first.
        narrowed.sort_by(|a, b| a.exposed_name().cmp(b.exposed_name()));
        let mut entries: Vec<Entry<T>> = Vec::with_capacity(narrowed.len());
        for entry in narrowed {
            match entries.last() {
                Some(kept) if kept.exposed_name() == entry.exposed_name() => {
                    collisions.push(kept.hides(
                        &entry.upstream,
                        &entry.original,
                        "rename one of them to another name in the virtual server",
                    ));
                }
                _ => entries.push(entry),
            }
        }
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// The entry behind an exposed name.
    pub fn route(&self, exposed: &str) -> Option<&Entry<T>> {
        self.entries
            .binary_search_by(|entry| entry.exposed_name().cmp(exposed))
            .ok()
            .map(|at| &self.entries[at])
    }

    /// Whether clients would see the same items in both.
    pub fn same_as(&self, other: &Self) -> bool {
        self.entries
            .iter()
            .map(|entry| &entry.item)
            .eq(other.entries.iter().map(|entry| &entry.item))
    }

    /// One page of at most `size` items after `cursor`, and the next page's cursor.
    pub fn page(
        &self,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<(Vec<T>, Option<String>), GatewayError> {
        cursor::page(
            &self.entries,
            cursor,
            size,
            |entry| entry.exposed_name(),
            |entry| entry.item.clone(),
        )
    }
}
