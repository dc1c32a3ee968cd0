//! `${VAR}` and `${VAR:default}` expansion inside every string of the parsed YAML tree.
//!
//! Expansion runs on the value tree, not on the raw text, so a variable's value can never
//! change the YAML structure around it. A scalar that is exactly one `${...}` is re-read as a
//! YAML scalar after expansion, so `port: ${PORT:8000}` still deserializes as a number.
//! `$${` writes a literal `${`.

use serde_yaml::Value;

use super::ConfigError;

/// Expands every string in `tree`; `path` is the key path of `tree` for error messages.
pub(super) fn expand_tree(
    tree: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match tree {
        Value::String(text) => {
            if let Some(expanded) = expand_scalar(text, path, env)? {
                *tree = expanded;
            }
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                expand_tree(item, &format!("{path}[{index}]"), env)?;
            }
        }
        Value::Mapping(map) => {
            for (key, value) in map.iter_mut() {
                let key = match key {
                    Value::String(key) => key.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                expand_tree(value, &child, env)?;
            }
        }
        Value::Tagged(tagged) => expand_tree(&mut tagged.value, path, env)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// Returns the replacement for a string scalar, or `None` when it holds no `${`.
fn expand_scalar(
    text: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Value>, ConfigError> {
    if !text.contains("${") {
        return Ok(None);
    }
    let expanded = expand_str(text, path, env)?;
    let whole_reference =
        text.starts_with("${") && text.ends_with('}') && !text[2..].contains("${");
    if whole_reference {
        // Let `8000` become a number and `true` a bool; anything that is not a plain scalar stays text.
        if let Ok(scalar @ (Value::Bool(_) | Value::Number(_))) =
            serde_yaml::from_str::<Value>(&expanded)
        {
            return Ok(Some(scalar));
        }
    }
    Ok(Some(Value::String(expanded)))
}

/// Expands the references in one string.
pub(super) fn expand_str(
    text: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(literal) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = literal;
            continue;
        }
        let Some(body) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body.find('}') else {
            return Err(ConfigError::invalid(
                path,
                format!("unterminated `${{` in {text:?}"),
            ));
        };
        let reference = &body[..end];
        let (name, default) = match reference.split_once(':') {
            Some((name, default)) => (name, Some(default)),
            None => (reference, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "`${{{reference}}}` is not a valid variable reference (expected ${{NAME}} or ${{NAME:default}})"
                ),
            ));
        }
        match (env(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(ConfigError::invalid(
                    path,
                    format!(
                        "environment variable {name} is not set and `${{{name}}}` has no default (write `${{{name}:default}}`)"
                    ),
                ));
            }
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("9000".into()),
            "TOKEN" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn set_variable_wins_over_default() {
        assert_eq!(expand_str("${PORT:8000}", "k", &env).unwrap(), "9000");
    }

    #[test]
    fn unset_variable_takes_default_even_when_empty() {
        assert_eq!(expand_str("a${NOPE:}b", "k", &env).unwrap(), "ab");
        assert_eq!(
            expand_str("${HOST:127.0.0.1}:${PORT:1}", "k", &env).unwrap(),
            "127.0.0.1:9000"
        );
    }

    #[test]
    fn unset_variable_without_default_names_the_key() {
        let error = expand_str(
            "Bearer ${MISSING}",
            "upstreams.x.headers.Authorization",
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("upstreams.x.headers.Authorization:"),
            "{error}"
        );
        assert!(error.contains("MISSING"), "{error}");
    }

    #[test]
    fn double_dollar_is_a_literal() {
        assert_eq!(expand_str("$${PORT} $5", "k", &env).unwrap(), "${PORT} $5");
    }

    #[test]
    fn whole_reference_becomes_a_number() {
        let mut tree: Value = serde_yaml::from_str("port: ${PORT:1}\nname: x${PORT}").unwrap();
        expand_tree(&mut tree, "", &env).unwrap();
        assert_eq!(tree["port"], Value::Number(9000.into()));
        assert_eq!(tree["name"], Value::String("x9000".into()));
    }

    #[test]
    fn unterminated_reference_is_an_error() {
        assert!(expand_str("${PORT", "k", &env).is_err());
    }
}
