//! `tools:` on an upstream (by the upstream's own tool name) or on a virtual server (by the
//! gateway's name): how a tool is offered and called through the gateway — another name, its
//! title, description and annotations, arguments pinned to a value (taken out of the offered
//! schema and always sent, whatever the client says) and defaults for the ones a client
//! leaves out.

use std::{borrow::Cow, sync::Arc};

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ConfigError, TaskSupport};
use crate::naming;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOverride {
    /// Another name: on an upstream, the name before its prefix; on a virtual server, the
    /// name its clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Merged over the tool's own: `readOnlyHint`, `destructiveHint`, `idempotentHint`,
    /// `openWorldHint`, `title`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub annotations: Map<String, Value>,
    /// Arguments always sent with these values: taken out of the schema clients see, and
    /// put over whatever a client sends.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub arguments: Map<String, Value>,
    /// Values for the arguments a client leaves out: shown as the schema's `default`, and no
    /// longer required.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub defaults: Map<String, Value>,
    /// Whether its calls run as tasks for clients that take them (see [`TaskSupport`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSupport>,
}

impl ToolOverride {
    /// Whether it changes a call's arguments, not only how the tool is shown.
    pub fn changes_arguments(&self) -> bool {
        !self.arguments.is_empty() || !self.defaults.is_empty()
    }

    /// What is wrong with it, at `key`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let Some(name) = &self.name
            && !naming::is_client_safe(name)
        {
            return Err(ConfigError::invalid(
                format!("{key}.name"),
                format!(
                    "{name:?} is not a name clients accept (1-{} characters of a-z, A-Z, 0-9, '_' and '-')",
                    naming::MAX_NAME_LEN
                ),
            ));
        }
        if let Some(both) = self
            .arguments
            .keys()
            .find(|name| self.defaults.contains_key(*name))
        {
            return Err(ConfigError::invalid(
                format!("{key}.defaults.{both}"),
                "is pinned in `arguments` too: a pinned argument has no default",
            ));
        }
        if let Err(error) =
            serde_json::from_value::<ToolAnnotations>(Value::Object(self.annotations.clone()))
        {
            return Err(ConfigError::invalid(
                format!("{key}.annotations"),
                error.to_string(),
            ));
        }
        Ok(())
    }

    /// The arguments it names that `tool`'s input schema does not have: an override that
    /// would pin or fill nothing.
    pub fn unknown_arguments<'a>(&'a self, tool: &Tool) -> Vec<&'a str> {
        let properties = tool
            .input_schema
            .get("properties")
            .and_then(Value::as_object);
        self.arguments
            .keys()
            .chain(self.defaults.keys())
            .filter(|name| properties.is_none_or(|properties| !properties.contains_key(*name)))
            .map(String::as_str)
            .collect()
    }

    /// `tool` as clients see it with this override (its name is the caller's to set).
    pub fn apply_to_tool(&self, tool: &mut Tool) {
        if let Some(title) = &self.title {
            tool.title = Some(title.clone());
        }
        if let Some(description) = &self.description {
            tool.description = Some(Cow::Owned(description.clone()));
        }
        if !self.annotations.is_empty() {
            let mut annotations = tool
                .annotations
                .as_ref()
                .and_then(|kept| serde_json::to_value(kept).ok())
                .and_then(|kept| kept.as_object().cloned())
                .unwrap_or_default();
            annotations.extend(self.annotations.clone());
            // Validated: the merged object is annotations.
            tool.annotations = serde_json::from_value(Value::Object(annotations)).ok();
        }
        if self.changes_arguments() {
            tool.input_schema = Arc::new(self.offered_schema(&tool.input_schema));
        }
    }

    /// The input schema without the pinned arguments, and with the defaults shown.
    fn offered_schema(&self, schema: &JsonObject) -> JsonObject {
        let mut schema = schema.clone();
        if let Some(Value::Object(properties)) = schema.get_mut("properties") {
            for pinned in self.arguments.keys() {
                properties.remove(pinned);
            }
            for (name, value) in &self.defaults {
                if let Some(Value::Object(property)) = properties.get_mut(name) {
                    property.insert("default".into(), value.clone());
                }
            }
        }
        if let Some(Value::Array(required)) = schema.get_mut("required") {
            required.retain(|name| {
                name.as_str().is_none_or(|name| {
                    !self.arguments.contains_key(name) && !self.defaults.contains_key(name)
                })
            });
        }
        schema
    }

    /// A call's arguments as the upstream gets them: defaults where the client gave none,
    /// pinned values over whatever it gave.
    pub fn apply_to_arguments(&self, arguments: &mut Option<JsonObject>) {
        if !self.changes_arguments() {
            return;
        }
        let arguments = arguments.get_or_insert_with(JsonObject::new);
        for (name, value) in &self.defaults {
            arguments
                .entry(name.clone())
                .or_insert_with(|| value.clone());
        }
        for (name, value) in &self.arguments {
            arguments.insert(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn echo() -> Tool {
        let Value::Object(schema) = json!({
            "type": "object",
            "properties": {"message": {"type": "string"}, "times": {"type": "integer"}, "loud": {"type": "boolean"}},
            "required": ["message", "times"]
        }) else {
            unreachable!()
        };
        let mut tool = Tool::new("echo", "Echoes", Arc::new(schema));
        tool.annotations = Some(ToolAnnotations::new().read_only(false));
        tool
    }

    fn rule(yaml: &str) -> ToolOverride {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn the_tool_is_shown_as_the_override_says() {
        let mut tool = echo();
        rule("title: Say\ndescription: Says it\nannotations: {readOnlyHint: true, openWorldHint: false}\narguments: {times: 2}\ndefaults: {loud: false}")
            .apply_to_tool(&mut tool);
        assert_eq!(tool.title.as_deref(), Some("Say"));
        assert_eq!(tool.description.as_deref(), Some("Says it"));
        let annotations = tool.annotations.unwrap();
        assert_eq!(annotations.read_only_hint, Some(true));
        assert_eq!(annotations.open_world_hint, Some(false));
        let schema = Value::Object((*tool.input_schema).clone());
        assert_eq!(
            schema["properties"].get("times"),
            None,
            "pinned: not offered"
        );
        assert_eq!(schema["properties"]["loud"]["default"], false);
        assert_eq!(schema["required"], json!(["message"]));
    }

    #[test]
    fn pinned_arguments_win_and_defaults_fill_only_gaps() {
        let rule = rule("arguments: {times: 2}\ndefaults: {loud: false}");
        let mut given = Some(
            json!({"message": "hi", "times": 99})
                .as_object()
                .unwrap()
                .clone(),
        );
        rule.apply_to_arguments(&mut given);
        assert_eq!(
            Value::Object(given.unwrap()),
            json!({"message": "hi", "times": 2, "loud": false})
        );
        let mut loud = Some(
            json!({"message": "hi", "loud": true})
                .as_object()
                .unwrap()
                .clone(),
        );
        rule.apply_to_arguments(&mut loud);
        assert_eq!(loud.unwrap()["loud"], true);
        let mut none = None;
        rule.apply_to_arguments(&mut none);
        assert_eq!(
            Value::Object(none.unwrap()),
            json!({"times": 2, "loud": false})
        );
    }

    #[test]
    fn bad_overrides_are_refused_and_unknown_arguments_found() {
        assert!(rule("name: \"no spaces\"").validate("k").is_err());
        assert!(
            rule("arguments: {a: 1}\ndefaults: {a: 2}")
                .validate("k")
                .is_err()
        );
        assert!(
            rule("annotations: {readOnlyHint: maybe}")
                .validate("k")
                .is_err()
        );
        assert!(
            rule("name: say\nannotations: {destructiveHint: true}")
                .validate("k")
                .is_ok()
        );
        assert_eq!(
            rule("arguments: {nope: 1, times: 2}").unknown_arguments(&echo()),
            ["nope"]
        );
    }
}
