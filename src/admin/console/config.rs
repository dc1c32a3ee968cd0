//! The config page: the configuration running now, every secret redacted, and a button that
//! reloads proxy.yaml and shows what the reload changed: the upstreams it started, restarted
//! and stopped, and the lines of the effective configuration that differ. Admins only, as
//! `POST /api/v1/system/reload` is.

use std::sync::Arc;

use askama::Template;
use axum::{extract::State, http::HeaderMap, response::Response};
use similar::{ChangeTag, TextDiff};

use super::{Frame, SameOrigin, page, session::Signed, text::Text};
use crate::{admin::AdminState, config::Config, gateway::Reconfigured, reload::Trigger};

/// The page's own path.
pub(super) const PAGE: &str = "/ui/config";

/// Unchanged lines shown around each change of the diff.
const CONTEXT_LINES: usize = 3;

#[derive(Template)]
#[template(path = "config.html")]
struct ConfigPage {
    frame: Frame,
    allowed: bool,
    /// Whether the gateway runs from a file it can reload.
    reloadable: bool,
    /// The effective configuration, as YAML, secrets redacted.
    yaml: String,
    reload: Option<Reload>,
}

/// What the reload button did.
enum Reload {
    Refused(String),
    Applied {
        /// What happened to which upstreams and sections, in the page's words.
        outcome: Vec<(&'static str, String)>,
        diff: Vec<DiffLine>,
    },
}

/// One line of the diff: `kind` is `same`, `gone`, `new` or `gap` (unchanged lines left out).
struct DiffLine {
    kind: &'static str,
    text: String,
}

/// The configuration running now, as shown: redacted, as YAML.
async fn shown(state: &AdminState) -> String {
    let running = match &state.reloader {
        Some(reloader) => reloader.running().await,
        None => state.config.clone(),
    };
    yaml(&running)
}

fn yaml(config: &Config) -> String {
    serde_yaml::to_string(&config.redacted())
        .unwrap_or_else(|error| format!("# the configuration cannot be shown: {error}\n"))
}

pub(super) async fn show(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Signed(user): Signed,
) -> Response {
    let allowed = user.is_admin;
    let yaml = if allowed {
        shown(&state).await
    } else {
        String::new()
    };
    page(&ConfigPage {
        frame: Frame::new(&headers, Some(user.username), PAGE),
        allowed,
        reloadable: state.reloader.is_some(),
        yaml,
        reload: None,
    })
}

/// `POST /ui/config/reload`.
pub(super) async fn reload(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Signed(user): Signed,
) -> Response {
    let frame = Frame::new(&headers, Some(user.username), PAGE);
    let allowed = user.is_admin;
    // The page shows what runs after the reload: the new configuration, or the one that
    // stays when the file is refused.
    let (reload, yaml) = match (&state.reloader, allowed) {
        (Some(reloader), true) => {
            let before = shown(&state).await;
            match reloader.reload(Trigger::Api).await {
                Ok(report) => {
                    let after = shown(&state).await;
                    let applied = Reload::Applied {
                        outcome: outcome(&report, frame.t),
                        diff: diff(&before, &after),
                    };
                    (Some(applied), after)
                }
                Err(error) => (Some(Reload::Refused(error.to_string())), before),
            }
        }
        (None, true) => (None, shown(&state).await),
        (_, false) => (None, String::new()),
    };
    page(&ConfigPage {
        frame,
        allowed,
        reloadable: state.reloader.is_some(),
        yaml,
        reload,
    })
}

/// The report's non-empty parts, each with its label.
fn outcome(report: &Reconfigured, t: &Text) -> Vec<(&'static str, String)> {
    let refused: Vec<String> = report
        .refused
        .iter()
        .map(|refused| format!("{} ({})", refused.name, refused.reason))
        .collect();
    let needs_restart: Vec<&str> = report.needs_restart.clone();
    let mut parts = vec![
        (t.reload_added, report.added.join(", ")),
        (t.reload_changed, report.changed.join(", ")),
        (t.reload_removed, report.removed.join(", ")),
        (t.reload_refused, refused.join("; ")),
        (t.virtual_servers, report.virtual_servers.join(", ")),
        (t.reload_needs_restart, needs_restart.join(", ")),
    ];
    if let Some(level) = &report.log_level {
        parts.push((t.reload_log_level, level.level.clone()));
    }
    parts.retain(|(_, names)| !names.is_empty());
    parts
}

/// The lines that differ between `before` and `after`, with [`CONTEXT_LINES`] around each
/// change; empty when nothing differs.
fn diff(before: &str, after: &str) -> Vec<DiffLine> {
    let diff = TextDiff::from_lines(before, after);
    let mut lines = Vec::new();
    for (index, group) in diff.grouped_ops(CONTEXT_LINES).iter().enumerate() {
        if index > 0 {
            lines.push(DiffLine {
                kind: "gap",
                text: "…".into(),
            });
        }
        for change in group.iter().flat_map(|op| diff.iter_changes(op)) {
            let (kind, sign) = match change.tag() {
                ChangeTag::Equal => ("same", ' '),
                ChangeTag::Delete => ("gone", '-'),
                ChangeTag::Insert => ("new", '+'),
            };
            lines.push(DiffLine {
                kind,
                text: format!("{sign} {}", change.value().trim_end_matches('\n')),
            });
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_shows_changes_with_their_context_and_gaps_between() {
        let before: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        let after = before
            .replace("line 2\n", "line two\n")
            .replace("line 18\n", "");
        let lines = diff(&before, &after);
        let said: Vec<String> = lines
            .iter()
            .map(|line| format!("{} {}", line.kind, line.text))
            .collect();
        assert_eq!(said[0], "same   line 1");
        assert!(said.contains(&"gone - line 2".to_owned()), "{said:#?}");
        assert!(said.contains(&"new + line two".to_owned()), "{said:#?}");
        assert!(said.contains(&"gap …".to_owned()), "{said:#?}");
        assert!(said.contains(&"gone - line 18".to_owned()), "{said:#?}");
        assert!(
            !said.iter().any(|line| line.contains("line 10")),
            "{said:#?}"
        );
        assert!(diff(&before, &before).is_empty());
    }
}
