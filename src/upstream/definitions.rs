//! Tool definitions that change under a client's feet: an upstream that re-lists a tool with
//! another description or schema may be changing what the model is told about it (a "rug
//! pull"). Every such change is logged with what changed; with `pin: true` the changed tool
//! is refused — left out of the catalog — until the gateway restarts. The definitions
//! compared against are the first this gateway saw from the upstream (restarts included).

use std::{collections::HashMap, sync::Mutex};

use crate::sync::lock;
use rmcp::model::Tool;
use serde_json::Value;

/// The first definition seen of each tool.
#[derive(Default)]
pub(super) struct FirstDefinitions(Mutex<HashMap<String, Value>>);

/// How much of a changed value a log line shows.
const SHOWN: usize = 200;

impl FirstDefinitions {
    /// Logs every tool of `tools` whose definition differs from the first one seen, and
    /// returns `tools` without them when `pin` is set.
    pub(super) fn check(&self, upstream: &str, pin: bool, tools: Vec<Tool>) -> Vec<Tool> {
        let mut first = lock(&self.0);
        tools
            .into_iter()
            .filter(|tool| {
                let now = serde_json::to_value(tool).unwrap_or(Value::Null);
                let Some(before) = first.get(tool.name.as_ref()) else {
                    first.insert(tool.name.to_string(), now);
                    return true;
                };
                if *before == now {
                    return true;
                }
                let changes = differences(before, &now);
                if pin {
                    tracing::error!(upstream, tool = %tool.name, %changes, "tool definition changed; refused (pin: true)");
                } else {
                    tracing::warn!(upstream, tool = %tool.name, %changes, "tool definition changed");
                }
                !pin
            })
            .collect()
    }
}

/// `key: old → new` for each top-level field that differs, values cut to [`SHOWN`] bytes.
fn differences(before: &Value, now: &Value) -> String {
    let empty = serde_json::Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let now = now.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| before.get(*key) != now.get(*key))
        .map(|key| {
            let show = |value: Option<&Value>| {
                let text = value.map_or_else(|| "(none)".to_owned(), Value::to_string);
                match text.char_indices().nth(SHOWN) {
                    Some((cut, _)) => format!("{}…", &text[..cut]),
                    None => text,
                }
            };
            format!("{key}: {} → {}", show(before.get(key)), show(now.get(key)))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn tool(description: &str) -> Tool {
        Tool::new(
            "echo",
            description.to_owned(),
            Arc::new(serde_json::Map::new()),
        )
    }

    #[test]
    fn a_changed_tool_is_kept_unless_pinned() {
        let definitions = FirstDefinitions::default();
        assert_eq!(definitions.check("u", true, vec![tool("says hi")]).len(), 1);
        assert_eq!(
            definitions.check("u", true, vec![tool("says hi")]).len(),
            1,
            "unchanged"
        );
        assert_eq!(
            definitions
                .check("u", false, vec![tool("steals keys")])
                .len(),
            1
        );
        assert!(
            definitions
                .check("u", true, vec![tool("steals keys")])
                .is_empty()
        );
    }

    #[test]
    fn differences_name_the_fields() {
        let before = serde_json::to_value(tool("says hi")).unwrap();
        let now = serde_json::to_value(tool("steals keys")).unwrap();
        assert_eq!(
            differences(&before, &now),
            "description: \"says hi\" → \"steals keys\""
        );
    }
}
