//! Resources and resource templates. URIs are not rewritten (tool results embed them), so a
//! `resources/read` is routed to the upstream that listed the URI, or else to the one whose
//! template matches it. A URI or template offered by two upstreams is a reported collision.

use std::{collections::HashSet, sync::Arc};

use rmcp::model::{Resource, ResourceTemplate};

use super::{Collision, cursor};
use crate::{error::GatewayError, upstream::Upstream};

#[derive(Debug, Clone)]
pub struct ResourceEntry {
    pub resource: Resource,
    pub upstream: Arc<Upstream>,
}

#[derive(Debug, Clone)]
pub struct TemplateEntry {
    pub template: ResourceTemplate,
    pub upstream: Arc<Upstream>,
}

/// Every ready upstream's resources (sorted by URI) and templates (sorted by template).
#[derive(Debug, Default)]
pub struct ResourceIndex {
    resources: Vec<ResourceEntry>,
    templates: Vec<TemplateEntry>,
}

impl ResourceIndex {
    pub fn build(upstreams: &[Arc<Upstream>], collisions: &mut Vec<Collision>) -> Self {
        let mut resources: Vec<ResourceEntry> = Vec::new();
        let mut templates: Vec<TemplateEntry> = Vec::new();
        let mut seen_uris: HashSet<String> = HashSet::new();
        let mut seen_templates: HashSet<String> = HashSet::new();
        for upstream in upstreams {
            let state = upstream.state();
            if state.peer.is_none() {
                continue;
            }
            for resource in state.resources.iter() {
                if !seen_uris.insert(resource.uri.clone()) {
                    collisions.push(collision(
                        "resource",
                        &resource.uri,
                        &resources,
                        upstream,
                        |e| (&e.resource.uri, &e.upstream),
                    ));
                    continue;
                }
                resources.push(ResourceEntry {
                    resource: resource.clone(),
                    upstream: upstream.clone(),
                });
            }
            for template in state.templates.iter() {
                if !seen_templates.insert(template.uri_template.clone()) {
                    collisions.push(collision(
                        "resource template",
                        &template.uri_template,
                        &templates,
                        upstream,
                        |e| (&e.template.uri_template, &e.upstream),
                    ));
                    continue;
                }
                templates.push(TemplateEntry {
                    template: template.clone(),
                    upstream: upstream.clone(),
                });
            }
        }
        resources.sort_unstable_by(|a, b| a.resource.uri.cmp(&b.resource.uri));
        templates.sort_unstable_by(|a, b| a.template.uri_template.cmp(&b.template.uri_template));
        Self {
            resources,
            templates,
        }
    }

    pub fn resources(&self) -> &[ResourceEntry] {
        &self.resources
    }

    pub fn templates(&self) -> &[TemplateEntry] {
        &self.templates
    }

    /// The upstream that listed `uri`, or else the first whose template matches it.
    pub fn owner_of(&self, uri: &str) -> Option<&Arc<Upstream>> {
        if let Ok(at) = self
            .resources
            .binary_search_by(|entry| entry.resource.uri.as_str().cmp(uri))
        {
            return Some(&self.resources[at].upstream);
        }
        self.template_owner(uri)
    }

    /// The upstream whose template is exactly `template` or matches it as a URI.
    pub fn template_owner(&self, uri_or_template: &str) -> Option<&Arc<Upstream>> {
        self.templates
            .iter()
            .find(|entry| {
                entry.template.uri_template == uri_or_template
                    || template_matches(&entry.template.uri_template, uri_or_template)
            })
            .map(|entry| &entry.upstream)
    }

    /// The resources and templates of the upstreams `keep` accepts.
    pub fn retain(&self, keep: impl Fn(&Upstream) -> bool) -> Self {
        Self {
            resources: self
                .resources
                .iter()
                .filter(|entry| keep(&entry.upstream))
                .cloned()
                .collect(),
            templates: self
                .templates
                .iter()
                .filter(|entry| keep(&entry.upstream))
                .cloned()
                .collect(),
        }
    }

    pub fn same_as(&self, other: &Self) -> bool {
        self.resources
            .iter()
            .map(|e| &e.resource)
            .eq(other.resources.iter().map(|e| &e.resource))
            && self
                .templates
                .iter()
                .map(|e| &e.template)
                .eq(other.templates.iter().map(|e| &e.template))
    }

    pub fn page_resources(
        &self,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<(Vec<Resource>, Option<String>), GatewayError> {
        cursor::page(
            &self.resources,
            cursor,
            size,
            |e| &e.resource.uri,
            |e| e.resource.clone(),
        )
    }

    pub fn page_templates(
        &self,
        cursor: Option<&str>,
        size: usize,
    ) -> Result<(Vec<ResourceTemplate>, Option<String>), GatewayError> {
        cursor::page(
            &self.templates,
            cursor,
            size,
            |e| &e.template.uri_template,
            |e| e.template.clone(),
        )
    }
}

fn collision<E>(
    kind: &'static str,
    key: &str,
    kept: &[E],
    dropped: &Arc<Upstream>,
    parts: impl Fn(&E) -> (&String, &Arc<Upstream>),
) -> Collision {
    let kept_upstream = kept
        .iter()
        .map(&parts)
        .find(|(k, _)| k.as_str() == key)
        .map(|(_, upstream)| upstream.name().to_owned())
        .unwrap_or_default();
    Collision {
        kind,
        exposed: key.to_owned(),
        kept_upstream,
        kept_item: key.to_owned(),
        dropped_upstream: dropped.name().to_owned(),
        dropped_item: key.to_owned(),
        remedy: "URIs are not rewritten, so only the first upstream's is served",
    }
}

/// One piece of an RFC 6570 URI template.
enum Part<'a> {
    Literal(&'a str),
    /// An expression; `operator` is its first character when that is one of `+#./;?&`.
    Expression {
        operator: Option<char>,
    },
}

fn parse(template: &str) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}')?;
                let body = &rest[1..end];
                let operator = body.chars().next().filter(|c| "+#./;?&".contains(*c));
                parts.push(Part::Expression { operator });
                rest = &rest[end + 1..];
            }
            Some(at) => {
                parts.push(Part::Literal(&rest[..at]));
                rest = &rest[at..];
            }
            None => {
                parts.push(Part::Literal(rest));
                rest = "";
            }
        }
    }
    Some(parts)
}

/// Whether `uri` is an expansion of `template` (level 1-4 operators, matched loosely: a simple
/// `{var}` takes no `/`, `{+var}` and `{#var}` take anything, `{?…}`/`{&…}` take a query).
pub fn template_matches(template: &str, uri: &str) -> bool {
    parse(template).is_some_and(|parts| matches(&parts, uri))
}

fn matches(parts: &[Part<'_>], uri: &str) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return uri.is_empty();
    };
    match first {
        Part::Literal(literal) => uri
            .strip_prefix(literal)
            .is_some_and(|tail| matches(rest, tail)),
        Part::Expression { operator } => {
            let takes_slash = matches!(operator, Some('+' | '#' | '?' | '&'));
            for (end, c) in uri.char_indices().chain(std::iter::once((uri.len(), ' '))) {
                if matches(rest, &uri[end..]) {
                    return true;
                }
                if end == uri.len() || (c == '/' && !takes_slash) {
                    break;
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::template_matches;

    #[test]
    fn simple_expressions_take_one_segment() {
        assert!(template_matches(
            "demo://resource/{id}",
            "demo://resource/42"
        ));
        assert!(!template_matches(
            "demo://resource/{id}",
            "demo://resource/4/2"
        ));
        assert!(!template_matches(
            "demo://resource/{id}",
            "other://resource/42"
        ));
        assert!(template_matches("file:///{+path}", "file:///a/b/c.txt"));
    }

    #[test]
    fn literals_after_expressions_must_match() {
        assert!(template_matches(
            "x://{a}/items/{b}.json",
            "x://1/items/2.json"
        ));
        assert!(!template_matches(
            "x://{a}/items/{b}.json",
            "x://1/items/2.txt"
        ));
    }

    #[test]
    fn query_expressions_are_optional() {
        assert!(template_matches(
            "x://search{?q,limit}",
            "x://search?q=a&limit=2"
        ));
        assert!(template_matches("x://search{?q,limit}", "x://search"));
    }
}
