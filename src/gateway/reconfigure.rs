//! A new configuration applied to the running gateway (a reload of `proxy.yaml`).
//!
//! Only the upstreams that differ are touched: an upstream whose entry and resolved settings
//! are the same keeps its process and its sessions. The others are stopped, started or
//! replaced in place, and the catalog rebuilds tell connected clients that their lists
//! changed. Sections read once at start (the listener, limits on connections, auth, the
//! database, log outputs) are reported as needing a restart rather than silently ignored.
//! `logging.level` is not among them: the reloader puts it in force.

use serde::Serialize;

use super::Gateway;
use crate::{
    config::{Config, UpstreamConfig},
    upstream::UpstreamSettings,
};

/// What a reload changed.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Reconfigured {
    /// Upstreams new in the file, now starting.
    pub added: Vec<String>,
    /// Upstreams whose entry (or the defaults it inherits) changed, now restarting.
    pub changed: Vec<String>,
    /// Upstreams gone from the file, now stopped.
    pub removed: Vec<String>,
    /// Upstreams left running as they were.
    pub unchanged: Vec<String>,
    /// Upstreams of the file that could not be applied, with why.
    pub refused: Vec<Refused>,
    /// Virtual servers added, changed or removed; their clients are told their lists changed.
    pub virtual_servers: Vec<String>,
    /// Sections that changed but are read only at start: they apply after a restart.
    pub needs_restart: Vec<&'static str>,
    /// The new `logging.level`, when it changed, and whether it is in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevelReport>,
}

/// A changed `logging.level`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogLevelReport {
    pub level: String,
    /// False when `RUST_LOG` overrides the file (see `note`).
    pub applied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An upstream of the new file that was not applied.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Refused {
    pub name: String,
    pub reason: String,
}

impl Reconfigured {
    /// Whether the reload changed anything at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.refused.is_empty()
            && self.virtual_servers.is_empty()
            && self.needs_restart.is_empty()
            && self.log_level.is_none()
    }
}

impl Gateway {
    /// Moves from `previous` (the configuration running now) to `next`, which has been
    /// validated. Upstreams added at run time (not in the file) are left alone.
    pub async fn reconfigure(&self, previous: &Config, next: Config) -> Reconfigured {
        let mut report = Reconfigured {
            virtual_servers: changed_virtual_servers(previous, &next),
            needs_restart: sections_needing_restart(previous, &next),
            ..Reconfigured::default()
        };
        if !report.virtual_servers.is_empty() {
            self.views
                .store(std::sync::Arc::new(super::view::compile(&next)));
            // Which sessions use which view is not tracked: every client re-lists.
            self.catalog_changes.send_modify(|changes| {
                changes.record(super::Changed {
                    tools: true,
                    prompts: true,
                    resources: true,
                })
            });
        }
        let settings =
            |config: &Config, entry: &UpstreamConfig| UpstreamSettings::resolve(config, entry);
        let mut removed = Vec::new();
        let mut changed = Vec::new();
        let mut added = Vec::new();
        for (name, old) in &previous.upstreams {
            match next.upstreams.get(name) {
                None => removed.push(name.clone()),
                Some(new) if new != old || settings(&next, new) != settings(previous, old) => {
                    changed.push((name.clone(), new.clone()));
                }
                Some(_) => report.unchanged.push(name.clone()),
            }
        }
        for (name, entry) in &next.upstreams {
            if !previous.upstreams.contains_key(name) {
                added.push((name.clone(), entry.clone()));
            }
        }
        let order: Vec<String> = next.upstreams.keys().cloned().collect();
        // New upstreams resolve their settings against the new defaults.
        self.config.store(std::sync::Arc::new(next));

        // Stop the removed and changed ones together: each may take its shutdown grace.
        let removals = removed.iter().map(|name| self.remove_upstream(name));
        for (name, outcome) in removed
            .iter()
            .zip(futures::future::join_all(removals).await)
        {
            match outcome {
                Ok(()) => report.removed.push(name.clone()),
                Err(error) => report.refused.push(Refused::new(name, error)),
            }
        }
        let replacements = changed
            .iter()
            .map(|(name, entry)| self.replace_upstream(name, entry.clone()));
        let replaced = futures::future::join_all(replacements).await;
        for ((name, _), outcome) in changed.iter().zip(replaced) {
            match outcome {
                Ok(()) => report.changed.push(name.clone()),
                Err(error) => report.refused.push(Refused::new(name, error)),
            }
        }
        for (name, entry) in added {
            match self.add_upstream(&name, entry) {
                Ok(()) => report.added.push(name),
                Err(error) => report.refused.push(Refused::new(&name, error)),
            }
        }
        let order: Vec<&str> = order.iter().map(String::as_str).collect();
        self.reorder(&order);
        self.rebuild_catalog();
        report
    }
}

impl Refused {
    fn new(name: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            name: name.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// The virtual servers whose definition differs between `previous` and `next`.
fn changed_virtual_servers(previous: &Config, next: &Config) -> Vec<String> {
    let before = &previous.virtual_servers;
    let after = &next.virtual_servers;
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The sections of `next` that differ from `previous` and are only read at start.
/// `limits` and `timeouts` also feed upstream settings, which apply at once (an upstream
/// whose resolved settings changed is restarted); their other uses wait for a restart.
fn sections_needing_restart(previous: &Config, next: &Config) -> Vec<&'static str> {
    let mut sections = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            sections.push(name);
        }
    };
    check("server", previous.server != next.server);
    check("limits", previous.limits != next.limits);
    check("timeouts", previous.timeouts != next.timeouts);
    check("catalog", previous.catalog != next.catalog);
    // `max_ttl_secs` also feeds upstream settings, which apply at once.
    check("cache", previous.cache != next.cache);
    check("tasks", previous.tasks != next.tasks);
    // The level is swapped at once; outputs (format, files, export) are set up at start.
    let outputs = |config: &Config| crate::config::LoggingConfig {
        level: String::new(),
        ..config.logging.clone()
    };
    check("logging", outputs(previous) != outputs(next));
    check("database", previous.database != next.database);
    check("auth", previous.auth != next.auth);
    check("security", previous.security != next.security);
    sections
}
