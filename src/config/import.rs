//! `mcps import`: another client's list of MCP servers as `proxy.yaml` upstream entries.
//!
//! Read: Claude Desktop's and Cursor's `{"mcpServers": {...}}`, VS Code's `mcp.json`
//! (`{"servers": {...}}`) and its `settings.json` (`{"mcp": {"servers": {...}}}`), with the
//! comments and trailing commas VS Code allows. Each entry keeps its meaning:
//! - `command`/`args`/`env`/`cwd`, `url`/`headers` and `type` carry over as they are;
//!   `disabled` too;
//! - `${env:VAR}` (VS Code, Cursor) becomes our `${VAR}`, and `${input:id}` (a VS Code
//!   prompt) becomes `${ID}`, to be set in the environment or `.env`;
//! - fields we have no equivalent for are left out, each one reported;
//! - a name that is not a valid upstream name is turned into one (`Brave Search` →
//!   `brave-search`), and the change is reported;
//! - an entry that runs mcp-remote becomes the remote server it bridges to
//!   ([`remote_bridge`]).

mod remote_bridge;

use std::path::Path;

use indexmap::IndexMap;
use jsonc_parser::ParseOptions;
use serde_json::{Map, Value};

use super::{Config, TransportKind, UpstreamConfig, validate::is_valid_upstream_name};

/// Upstream entries by name, and what the reader should know about the conversion.
#[derive(Debug, Default)]
pub struct Imported {
    pub upstreams: IndexMap<String, UpstreamConfig>,
    pub notes: Vec<String>,
}

/// JSON as VS Code writes it: with comments (`//`, `/* */`) and trailing commas, and
/// otherwise JSON.
const JSONC: ParseOptions = ParseOptions {
    allow_comments: true,
    allow_trailing_commas: true,
    allow_loose_object_property_names: false,
    allow_missing_commas: false,
    allow_single_quoted_strings: false,
    allow_hexadecimal_numbers: false,
    allow_unary_plus_numbers: false,
    allow_bare_decimal_point_numbers: false,
    allow_non_finite_numbers: false,
    allow_extended_string_escapes: false,
};

/// Reads the servers out of a client's configuration file's text.
pub fn import(text: &str) -> Result<Imported, String> {
    let document: Value = jsonc_parser::parse_to_serde_value(text, &JSONC)
        .map_err(|error| format!("not JSON (comments and trailing commas allowed): {error}"))?;
    let servers = servers_of(&document).ok_or(
        "no server list found: expected \"mcpServers\" (Claude Desktop, Cursor), \"servers\" \
         (VS Code mcp.json) or \"mcp\": {\"servers\"} (VS Code settings)",
    )?;
    let mut imported = Imported::default();
    for (original, entry) in servers {
        let name = unique_name(&sanitized_name(original), &imported.upstreams);
        if name != *original {
            imported
                .notes
                .push(format!("{original:?} is imported as {name:?}"));
        }
        let Value::Object(entry) = entry else {
            imported
                .notes
                .push(format!("{original:?} is not an object; skipped"));
            continue;
        };
        match upstream_of(entry, &name, &mut imported.notes) {
            Ok(upstream) => {
                let upstream = remote_bridge::remote_of(&upstream, &name, &mut imported.notes)
                    .unwrap_or(upstream);
                imported.upstreams.insert(name, upstream);
            }
            Err(why) => imported.notes.push(format!("{original:?}: {why}; skipped")),
        }
    }
    Ok(imported)
}

fn servers_of(document: &Value) -> Option<&Map<String, Value>> {
    let object = document.as_object()?;
    object
        .get("mcpServers")
        .or_else(|| object.get("servers"))
        .or_else(|| object.get("mcp")?.get("servers"))?
        .as_object()
}

fn upstream_of(
    entry: &Map<String, Value>,
    name: &str,
    notes: &mut Vec<String>,
) -> Result<UpstreamConfig, String> {
    let mut upstream = UpstreamConfig::default();
    for (field, value) in entry {
        match field.as_str() {
            "command" => upstream.command = Some(text(field, value)?),
            "args" => {
                upstream.args = strings(field, value)?
                    .into_iter()
                    .map(|arg| placeholders(&arg, name, notes))
                    .collect();
            }
            "env" => upstream.env = string_map(field, value, name, notes)?,
            "cwd" => upstream.cwd = Some(placeholders(&text(field, value)?, name, notes).into()),
            "url" => upstream.url = Some(placeholders(&text(field, value)?, name, notes)),
            "headers" => upstream.headers = string_map(field, value, name, notes)?,
            "type" | "transport" => {
                let kind: TransportKind = serde_json::from_value(value.clone())
                    .map_err(|_| format!("unknown {field} {value}"))?;
                upstream.transport = Some(kind);
            }
            "disabled" => upstream.disabled = value.as_bool().unwrap_or(false),
            other => notes.push(format!(
                "{name}: `{other}` has no equivalent here; left out"
            )),
        }
    }
    if upstream.command.is_none() && upstream.url.is_none() {
        return Err("neither `command` nor `url`".into());
    }
    // A `type` that only restates the inferred transport is left implicit.
    if upstream.transport.is_some() {
        let explicit = upstream.transport.take();
        if upstream.transport_kind() != explicit.expect("just taken") {
            upstream.transport = explicit;
        }
    }
    Ok(upstream)
}

fn text(field: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("`{field}` is not a string"))
}

fn strings(field: &str, value: &Value) -> Result<Vec<String>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("`{field}` is not a list"))?
        .iter()
        .map(|item| text(field, item))
        .collect()
}

fn string_map(
    field: &str,
    value: &Value,
    name: &str,
    notes: &mut Vec<String>,
) -> Result<IndexMap<String, String>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("`{field}` is not an object"))?
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::String(text) => text.clone(),
                // `"PORT": 8080` is common; the environment only has strings.
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => return Err(format!("`{field}.{key}` is not a string")),
            };
            Ok((key.clone(), placeholders(&value, name, notes)))
        })
        .collect()
}

/// `${env:VAR}` → `${VAR}`; `${input:api-key}` → `${API_KEY}` (noted: it must be set).
fn placeholders(value: &str, name: &str, notes: &mut Vec<String>) -> String {
    replace_placeholders(value, |inner| {
        if let Some(var) = inner.strip_prefix("env:") {
            return Some(format!("${{{var}}}"));
        }
        let input = inner.strip_prefix("input:")?;
        let var: String = input
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        notes.push(format!(
            "{name}: the prompt `{inner}` is read from the environment variable {var}"
        ));
        Some(format!("${{{var}}}"))
    })
}

/// `value` with each `${...}` replaced by what `replace` makes of what is inside the braces,
/// or kept as it is when that is nothing.
fn replace_placeholders(value: &str, mut replace: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        match replace(&after[..end]) {
            Some(text) => out.push_str(&text),
            None => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A valid upstream name close to `original`: lowercase, other characters as `-`.
fn sanitized_name(original: &str) -> String {
    let mut name = String::new();
    for c in original.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.is_empty() && !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_end_matches('-');
    let name: String = name.chars().take(32).collect();
    let name = name.trim_end_matches('-').to_owned();
    if name.is_empty() {
        "server".into()
    } else {
        name
    }
}

/// `name`, or `name-2`, `name-3`… when it is taken.
fn unique_name(name: &str, taken: &IndexMap<String, UpstreamConfig>) -> String {
    if !taken.contains_key(name) {
        return name.to_owned();
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            let stem: String = name.chars().take(32 - suffix.len()).collect();
            format!("{stem}{suffix}")
        })
        .find(|candidate| !taken.contains_key(candidate) && is_valid_upstream_name(candidate))
        .expect("some suffix is free")
}

/// The imported entries as the `upstreams:` section of a `proxy.yaml`, without the fields
/// that only restate a default.
pub fn to_yaml(upstreams: &IndexMap<String, UpstreamConfig>) -> Result<String, String> {
    let yaml =
        |upstream: &UpstreamConfig| serde_yaml::to_value(upstream).map_err(|e| e.to_string());
    let defaults = yaml(&UpstreamConfig::default())?;
    let mut entries = serde_yaml::Mapping::new();
    for (name, upstream) in upstreams {
        let mut entry = yaml(upstream)?;
        if let Some(fields) = entry.as_mapping_mut() {
            fields.retain(|field, value| defaults.get(field) != Some(value));
        }
        entries.insert(name.clone().into(), entry);
    }
    let body = serde_yaml::to_string(&entries).map_err(|error| error.to_string())?;
    let mut section = String::from("upstreams:\n");
    for line in body.lines() {
        section.push_str("  ");
        section.push_str(line);
        section.push('\n');
    }
    Ok(section)
}

/// Adds `upstreams` to the config file at `path` as text, so its comments and layout stay:
/// under its `upstreams:` key (at that section's indentation), or as a new section. Names the
/// file already has are left alone. The result must load as a valid config before it
/// replaces the file. Returns the names added.
pub fn add_to_file(
    path: &Path,
    upstreams: &IndexMap<String, UpstreamConfig>,
) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let lookup = |name: &str| std::env::var(name).ok();
    let existing = Config::from_yaml_str(&text, &lookup)
        .map_err(|error| format!("{}: {error}; fix it first", path.display()))?;
    let mut added = upstreams.clone();
    added.retain(|name, _| !existing.upstreams.contains_key(name));
    let names: Vec<String> = added.keys().cloned().collect();
    for name in upstreams.keys().filter(|name| !added.contains_key(*name)) {
        eprintln!(
            "note: {name} is already in {}; left as it is",
            path.display()
        );
    }
    if added.is_empty() {
        return Ok(names);
    }
    let merged = insert_entries(&text, &to_yaml(&added)?);
    Config::from_yaml_str(&merged, &lookup).map_err(|error| {
        format!("the imported entries make an invalid config ({error}); nothing written")
    })?;
    let scratch = path.with_extension("yaml.importing");
    std::fs::write(&scratch, merged)
        .and_then(|()| std::fs::rename(&scratch, path))
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(names)
}

/// `section` (an `upstreams:` block at two spaces) placed into `text`.
fn insert_entries(text: &str, section: &str) -> String {
    let entries = section
        .strip_prefix("upstreams:\n")
        .expect("to_yaml starts the section");
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|line| {
        line.starts_with("upstreams:")
            && line["upstreams:".len()..]
                .split('#')
                .next()
                .is_some_and(|rest| matches!(rest.trim(), "" | "{}"))
    }) else {
        let separator = if text.ends_with('\n') || text.is_empty() {
            ""
        } else {
            "\n"
        };
        return format!("{text}{separator}{section}");
    };
    // The existing entries' indentation, which the new ones must share.
    let indent = lines[at + 1..]
        .iter()
        .find(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|line| line.len() - line.trim_start().len())
        .filter(|indent| *indent > 0)
        .unwrap_or(2);
    // After the section's last entry: the new entries come after the existing ones (which
    // keep winning a clash of tool names), and the comments after that last entry (commented
    // examples, the next section's heading) stay where they are.
    let is_entry_line = |line: &&str| {
        let trimmed = line.trim_start();
        !trimmed.is_empty() && !trimmed.starts_with('#')
    };
    let section_end = lines[at + 1..]
        .iter()
        .position(|line| is_entry_line(line) && !line.starts_with([' ', '\t']))
        .map_or(lines.len(), |end| at + 1 + end);
    let last_entry_line = lines[at + 1..section_end]
        .iter()
        .rposition(is_entry_line)
        .map_or(at, |last| at + 1 + last);
    let mut out = String::with_capacity(text.len() + entries.len());
    for line in &lines[..at] {
        out.push_str(line);
        out.push('\n');
    }
    // The key's line keeps its comment; an empty `{}` goes, as entries follow now.
    let (key_line, comment) = match lines[at].find('#') {
        Some(hash) => lines[at].split_at(hash),
        None => (lines[at], ""),
    };
    let key_line = key_line.trim_end().trim_end_matches("{}").trim_end();
    out.push_str(format!("{key_line} {comment}").trim_end());
    out.push('\n');
    for line in &lines[at + 1..=last_entry_line] {
        out.push_str(line);
        out.push('\n');
    }
    for line in entries.lines() {
        // Each line of `to_yaml` is indented by two; re-indent by the file's own step.
        let inner = &line[2..];
        let depth = inner.len() - inner.trim_start().len();
        out.push_str(&" ".repeat(indent + depth / 2 * indent));
        out.push_str(inner.trim_start());
        out.push('\n');
    }
    for line in &lines[last_entry_line + 1..] {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_desktop_entries_carry_over_with_valid_names() {
        let imported = import(
            r#"{"mcpServers": {
                "Brave Search": {"command": "npx", "args": ["-y", "brave"], "env": {"KEY": "k"}},
                "remote": {"url": "https://example.com/mcp", "headers": {"X-A": "b"}}
            }}"#,
        )
        .unwrap();
        let brave = &imported.upstreams["brave-search"];
        assert_eq!(brave.command.as_deref(), Some("npx"));
        assert_eq!(brave.env["KEY"], "k");
        assert_eq!(
            imported.upstreams["remote"].url.as_deref(),
            Some("https://example.com/mcp")
        );
        assert!(
            imported.notes[0].contains("brave-search"),
            "{:?}",
            imported.notes
        );
    }

    #[test]
    fn vs_code_jsonc_with_inputs_and_env_placeholders() {
        let imported = import(
            r#"{
                // a comment
                "inputs": [{"id": "api-key", "type": "promptString"}],
                "servers": {
                    "gh": {"type": "http", "url": "https://x/mcp",
                           "headers": {"Authorization": "Bearer ${input:api-key}"},},
                    /* another */
                    "fs": {"type": "stdio", "command": "fs", "env": {"HOME": "${env:HOME}"},
                           "envFile": ".env"},
                },
            }"#,
        )
        .unwrap();
        assert_eq!(
            imported.upstreams["gh"].headers["Authorization"],
            "Bearer ${API_KEY}"
        );
        assert_eq!(imported.upstreams["fs"].env["HOME"], "${HOME}");
        // `type` only restated what the entry implies.
        assert_eq!(imported.upstreams["gh"].transport, None);
        assert!(imported.notes.iter().any(|note| note.contains("envFile")));
        assert!(imported.notes.iter().any(|note| note.contains("API_KEY")));
    }

    #[test]
    fn names_are_made_valid_and_unique() {
        assert_eq!(sanitized_name("My_Server!"), "my-server");
        assert_eq!(sanitized_name("__"), "server");
        let mut taken = IndexMap::new();
        taken.insert("a".to_owned(), UpstreamConfig::default());
        assert_eq!(unique_name("a", &taken), "a-2");
    }

    #[test]
    fn entries_go_after_the_existing_ones_at_their_indentation() {
        let mut upstreams = IndexMap::new();
        upstreams.insert(
            "new".to_owned(),
            UpstreamConfig {
                command: Some("x".into()),
                args: vec!["a".into()],
                ..UpstreamConfig::default()
            },
        );
        let section = to_yaml(&upstreams).unwrap();
        let text = "# top\nupstreams:   # mine\n    # the old one\n    old:\n        command: y\n    # an example:\n    # other: {}\n\n# Logging.\nlogging: {}\n";
        let merged = insert_entries(text, &section);
        assert_eq!(
            merged,
            "# top\nupstreams: # mine\n    # the old one\n    old:\n        command: y\n    new:\n        command: x\n        args:\n        - a\n    # an example:\n    # other: {}\n\n# Logging.\nlogging: {}\n",
            "after the existing entries, every comment where it was"
        );
        let lookup = |_: &str| None;
        let config = Config::from_yaml_str(&merged, &lookup).unwrap();
        assert_eq!(config.upstreams.len(), 2);
        let fresh = insert_entries("server: {}\n", &section);
        assert_eq!(
            Config::from_yaml_str(&fresh, &lookup)
                .unwrap()
                .upstreams
                .len(),
            1
        );
    }

    #[test]
    fn strings_keep_their_slashes_and_commas() {
        let text = r#"{"mcpServers": {"a": {"url": "http://x/y, /* z */ // no comment",
            "headers": {"k": "v",},},}}"#;
        let imported = import(text).unwrap();
        let upstream = &imported.upstreams["a"];
        assert_eq!(
            upstream.url.as_deref(),
            Some("http://x/y, /* z */ // no comment")
        );
        assert_eq!(upstream.headers["k"], "v");
    }

    #[test]
    fn what_json_does_not_allow_beyond_comments_and_trailing_commas_is_refused() {
        for text in [
            r#"{"mcpServers": {'a': {"command": "x"}}}"#,
            r#"{"mcpServers": {"a": {"command": "x"} "b": {"command": "y"}}}"#,
            r#"{"mcpServers": {a: {"command": "x"}}}"#,
            r#"{"mcpServers": {"a": {"command": "x"}}"#,
        ] {
            let error = import(text).expect_err(text);
            assert!(
                error.starts_with("not JSON (comments and trailing commas allowed): "),
                "{error}"
            );
        }
    }
}
