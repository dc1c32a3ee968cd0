//! The upstream form, which adds an upstream or edits one: its fields, and what they become
//! (a new entry, or a merge patch of the current one).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::UpstreamConfig;

/// The keys of an entry that have fields of their own on the form.
const FIELDS: [&str; 7] = [
    "command", "args", "env", "url", "headers", "prefix", "disabled",
];

/// The add and edit form. Lists are one item a line; `env` lines are `NAME=value`,
/// `headers` lines `Name: value`; `more` holds every other key of a proxy.yaml entry, as
/// YAML (timeouts, transport, protocol, isolation, OAuth...), so the form takes the whole
/// schema.
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
    #[serde(default)]
    pub more: String,
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
            more: more_of(shown),
        }
    }

    /// The merge patch that makes `current` what the form says: a blank field removes its
    /// key, an `env` or `headers` line left out removes that variable or header, and a key
    /// left out of `more` goes back to its default.
    pub fn patch(&self, current: &UpstreamConfig) -> Result<Map<String, Value>, String> {
        let mut patch = self.entry()?;
        let others = other_keys(current);
        for key in FIELDS
            .iter()
            .copied()
            .chain(others.keys().map(String::as_str))
        {
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
        for (key, value) in more(&self.more)? {
            entry.insert(key, value);
        }
        Ok(entry)
    }
}

/// The keys of `more`, as YAML: a mapping of proxy.yaml keys without fields of their own.
fn more(yaml: &str) -> Result<Map<String, Value>, String> {
    if yaml.trim().is_empty() {
        return Ok(Map::new());
    }
    let more = match serde_yaml::from_str::<Value>(yaml) {
        Ok(Value::Object(more)) => more,
        Ok(_) => return Err("more settings: write YAML keys, as in proxy.yaml".into()),
        Err(error) => return Err(format!("more settings: {error}")),
    };
    if let Some(key) = more
        .keys()
        .find(|key| FIELDS.contains(&key.as_str()) || *key == "name")
    {
        return Err(format!("more settings: `{key}` has a field of its own"));
    }
    Ok(more)
}

/// The keys of an entry the form's own fields do not show, but those at their defaults.
fn other_keys(entry: &UpstreamConfig) -> Map<String, Value> {
    let Ok(Value::Object(mut keys)) = serde_json::to_value(entry) else {
        return Map::new();
    };
    keys.retain(|key, _| !FIELDS.contains(&key.as_str()));
    let defaults = serde_json::to_value(UpstreamConfig::default()).unwrap_or_default();
    keys.retain(|key, value| defaults.get(key) != Some(value));
    keys
}

/// `more` for an entry as shown: its other keys as YAML, or nothing.
fn more_of(shown: &UpstreamConfig) -> String {
    let others = other_keys(shown);
    if others.is_empty() {
        return String::new();
    }
    serde_yaml::to_string(&others).unwrap_or_default()
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

    #[test]
    fn more_settings_carry_the_rest_of_the_schema_both_ways() {
        let current: UpstreamConfig = serde_json::from_value(json!({
            "url": "https://mcp.example.com/mcp",
            "call_timeout_secs": 9.0,
            "isolation": "per-session",
            "oauth": {"client_id": "c", "client_secret": "kept"},
        }))
        .unwrap();
        let mut form = NewUpstream::of("ex", &current.redacted());
        assert!(
            form.more.contains("call_timeout_secs: 9.0")
                && form.more.contains("isolation: per-session")
                && form.more.contains("client_secret: '********'")
                && !form.more.contains("protocol"),
            "only what differs from the defaults: {}",
            form.more
        );
        // Taking a key out of `more` sends it back to its default; the secret stays.
        form.more = form.more.replace("call_timeout_secs: 9.0\n", "");
        let mut entry = serde_json::to_value(&current).unwrap();
        let mut patch = form.patch(&current).unwrap();
        patch.remove("name");
        crate::admin::services::merge_patch(&mut entry, Value::Object(patch));
        let edited: UpstreamConfig = serde_json::from_value(entry).unwrap();
        assert_eq!(edited.call_timeout_secs, None);
        assert_eq!(edited.isolation, current.isolation);
        assert_eq!(edited.oauth, current.oauth);
    }

    #[test]
    fn more_settings_that_are_not_a_mapping_or_repeat_a_field_are_refused() {
        for (more, said) in [
            ("- a list", "write YAML keys"),
            ("call_timeout_secs: [", "more settings:"),
            ("url: http://elsewhere/mcp", "`url` has a field of its own"),
            ("name: other", "`name` has a field of its own"),
        ] {
            let form = NewUpstream {
                name: "ex".into(),
                url: "https://mcp.example.com/mcp".into(),
                more: more.into(),
                ..NewUpstream::default()
            };
            let why = form.entry().unwrap_err();
            assert!(why.contains(said), "{more}: {why}");
        }
    }
}
