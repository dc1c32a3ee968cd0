//! The upstream form, which adds an upstream or edits one: its fields, and what they become
//! (a new entry, or a merge patch of the current one).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::UpstreamConfig;

/// The add and edit form. Lists are one item a line; `env` lines are `NAME=value`,
/// `headers` lines `Name: value`.
#[derive(Deserialize, Default)]
pub(in crate::admin::console) struct NewUpstream {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub env: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub headers: String,
    #[serde(default)]
    pub prefix: String,
    /// A checkbox: present when ticked.
    pub disabled: Option<String>,
}

impl NewUpstream {
    /// The form filled with an entry as the API shows it (secrets redacted: sent back
    /// unchanged, they keep their values).
    pub fn of(name: &str, shown: &UpstreamConfig) -> Self {
        let lines = |pairs: &indexmap::IndexMap<String, String>, separator: &str| {
            pairs
                .iter()
                .map(|(name, value)| format!("{name}{separator}{value}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Self {
            name: name.to_owned(),
            command: shown.command.clone().unwrap_or_default(),
            args: shown.args.join("\n"),
            env: lines(&shown.env, "="),
            url: shown.url.clone().unwrap_or_default(),
            headers: lines(&shown.headers, ": "),
            prefix: shown.prefix.clone().unwrap_or_default(),
            disabled: shown.disabled.then(|| "on".to_owned()),
        }
    }

    /// The merge patch that makes `current` what the form says: a blank field removes its
    /// key, and an `env` or `headers` line left out removes that variable or header. What
    /// the form does not show (timeouts, OAuth, isolation...) stays as it is.
    pub fn patch(&self, current: &UpstreamConfig) -> Result<Map<String, Value>, String> {
        let mut patch = self.entry()?;
        for key in ["command", "args", "env", "url", "headers", "prefix"] {
            patch.entry(key).or_insert(Value::Null);
        }
        for (key, kept) in [("env", &current.env), ("headers", &current.headers)] {
            if let Some(Value::Object(given)) = patch.get_mut(key) {
                for name in kept.keys() {
                    given.entry(name.as_str()).or_insert(Value::Null);
                }
            }
        }
        Ok(patch)
    }

    /// The entry as the API takes it: `{"name": …, <proxy.yaml fields>}`.
    pub fn entry(&self) -> Result<Map<String, Value>, String> {
        let mut entry = Map::new();
        entry.insert("name".into(), json!(self.name.trim()));
        if let Some(command) = filled(&self.command) {
            entry.insert("command".into(), json!(command));
            let args: Vec<&str> = self
                .args
                .lines()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect();
            entry.insert("args".into(), json!(args));
            entry.insert("env".into(), Value::Object(pairs(&self.env, '=', "env")?));
        }
        if let Some(url) = filled(&self.url) {
            entry.insert("url".into(), json!(url));
            entry.insert(
                "headers".into(),
                Value::Object(pairs(&self.headers, ':', "headers")?),
            );
        }
        if let Some(prefix) = filled(&self.prefix) {
            entry.insert("prefix".into(), json!(prefix));
        }
        entry.insert("disabled".into(), json!(self.disabled.is_some()));
        Ok(entry)
    }
}

/// A field's text, trimmed, unless blank.
fn filled(field: &str) -> Option<&str> {
    Some(field.trim()).filter(|text| !text.is_empty())
}

/// `NAME<separator>value` lines as an object.
fn pairs(lines: &str, separator: char, field: &str) -> Result<Map<String, Value>, String> {
    let mut pairs = Map::new();
    for line in lines.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let Some((name, value)) = line.split_once(separator) else {
            return Err(format!(
                "{field}: {line:?} is not of the form NAME{separator}value"
            ));
        };
        pairs.insert(name.trim().to_owned(), json!(value.trim()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_form_keeps_redacted_secrets_and_removes_what_was_taken_out() {
        let current: UpstreamConfig = serde_json::from_value(json!({
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer kept", "X-Old": "1"},
            "prefix": "ex_",
            "call_timeout_secs": 9.0,
        }))
        .unwrap();
        let mut form = NewUpstream::of("ex", &current.redacted());
        assert_eq!(form.headers, "Authorization: ********\nX-Old: ********");
        form.headers = "Authorization: ********\nX-New: 2".into();
        form.prefix = String::new();
        form.disabled = Some("on".into());

        let mut entry = serde_json::to_value(&current).unwrap();
        let mut patch = form.patch(&current).unwrap();
        assert_eq!(patch.remove("name"), Some(json!("ex")));
        crate::admin::services::merge_patch(&mut entry, Value::Object(patch));
        let edited: UpstreamConfig = serde_json::from_value(entry).unwrap();
        assert_eq!(
            edited.headers.into_iter().collect::<Vec<_>>(),
            [
                ("Authorization".to_owned(), "Bearer kept".to_owned()),
                ("X-New".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(edited.prefix, None, "a blank field removes its key");
        assert!(edited.disabled);
        assert_eq!(edited.url.as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(
            edited.call_timeout_secs,
            Some(9.0),
            "what the form does not show stays"
        );
    }

    #[test]
    fn a_form_that_switches_to_a_command_drops_the_url_and_its_headers() {
        let current: UpstreamConfig = serde_json::from_value(json!({
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer x"},
        }))
        .unwrap();
        let form = NewUpstream {
            name: "ex".into(),
            command: "mcps".into(),
            args: "hello".into(),
            ..NewUpstream::default()
        };
        let patch = form.patch(&current).unwrap();
        assert_eq!(patch["url"], Value::Null);
        assert_eq!(patch["headers"], Value::Null);
        assert_eq!(patch["args"], json!(["hello"]));
    }
}
