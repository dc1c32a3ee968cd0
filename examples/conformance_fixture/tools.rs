//! The session-era tools of the conformance scenarios (`tools-*`, `elicitation-*`,
//! `json-schema-2020-12`), with the payloads the scenarios describe.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CreateMessageRequestParams,
        ElicitRequestParams, InputRequiredResult, InputResponses, ProgressNotificationParam, Tool,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use super::{complete, diagnostics, input_required, log, model};

/// A 1×1 red PNG.
pub const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A minimal WAV file.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}})
}

pub fn tool(name: &str, description: &str, input_schema: Value) -> Tool {
    model(json!({"name": name, "description": description, "inputSchema": input_schema}))
}

/// With `--odd-names`: tools whose names a header cannot carry as they are, so that a
/// 2026-07-28 client names them in `Mcp-Name` in SEP-2243's Base64 form (non-ASCII, spaces at
/// the ends, a name that looks encoded). Each answers with its own name.
pub const ODD_NAMES: [&str; 3] = ["café", " padded ", "=?base64?eA==?="];

/// The tools of [`ODD_NAMES`].
pub fn odd_names() -> impl Iterator<Item = Tool> {
    ODD_NAMES
        .into_iter()
        .map(|name| tool(name, "Answers with its own name", no_arguments()))
}

/// The answer of the tool of [`ODD_NAMES`] called `name`, if it is one.
pub fn answer_odd_name(name: &str) -> Option<CallToolResponse> {
    ODD_NAMES.contains(&name).then(|| text(name))
}

/// With `--header-arguments`: a tool whose arguments a 2026-07-28 client sends in headers
/// too (SEP-2243's `Mcp-Param-*`), one of them nested. rmcp's server refuses a call whose
/// headers and body disagree (-32020). It answers with the values it got.
pub const ROUTED: &str = "routed";

/// The tool [`ROUTED`].
pub fn routed() -> Tool {
    let mirrored = |kind: &str, header: &str| json!({"type": kind, "x-mcp-header": header});
    tool(
        ROUTED,
        "Answers with the arguments it mirrors in headers",
        json!({"type": "object", "properties": {
            "region": mirrored("string", "Region"),
            "shard": mirrored("integer", "Shard"),
            "dry": mirrored("boolean", "Dry"),
            "where": {"type": "object", "properties": {"zone": mirrored("string", "Zone")}},
            "note": {"type": "string"}
        }}),
    )
}

/// The answer of [`ROUTED`] to `arguments`.
pub fn answer_routed(arguments: &serde_json::Map<String, Value>) -> CallToolResponse {
    let shown = |value: Option<&Value>, absent: &str| match value {
        Some(Value::String(text)) => text.clone(),
        Some(value) => value.to_string(),
        None => absent.to_owned(),
    };
    let zone = arguments.get("where").and_then(|place| place.get("zone"));
    text(format!(
        "region={} shard={} dry={} zone={}",
        shown(arguments.get("region"), "-"),
        shown(arguments.get("shard"), "-1"),
        shown(arguments.get("dry"), "false"),
        shown(zone, "-"),
    ))
}

/// Every tool, the session-era ones and the `input_required` ones.
pub fn list() -> Vec<Tool> {
    let string_argument = |name: &str, description: &str| json!({"type": "object", "properties": {name: {"type": "string", "description": description}}, "required": [name]});
    let mut tools = vec![
        tool("test_simple_text", "Returns simple text", no_arguments()),
        tool("test_image_content", "Returns an image", no_arguments()),
        tool("test_audio_content", "Returns audio", no_arguments()),
        tool(
            "test_embedded_resource",
            "Returns an embedded resource",
            no_arguments(),
        ),
        tool(
            "test_multiple_content_types",
            "Returns text, an image and a resource",
            no_arguments(),
        ),
        tool(
            "test_tool_with_logging",
            "Logs three messages while it runs",
            no_arguments(),
        ),
        tool(
            "test_tool_with_progress",
            "Reports progress 0, 50 and 100 of 100",
            no_arguments(),
        ),
        tool(
            "test_error_handling",
            "Always fails with a tool error",
            no_arguments(),
        ),
        tool(
            "test_sampling",
            "Asks the client's model",
            string_argument("prompt", "The prompt to send to the LLM"),
        ),
        tool(
            "test_elicitation",
            "Asks the user",
            string_argument("message", "The message to show the user"),
        ),
        tool(
            "test_url_elicitation",
            "Asks the user to visit a URL (URL-mode elicitation)",
            string_argument("message", "The message to show the user"),
        ),
        tool(
            "test_slow_tool",
            "Answers after the given number of seconds, or when cancelled",
            json!({"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]}),
        ),
        tool(
            "test_elicitation_sep1034_defaults",
            "Asks with defaults for every primitive type",
            no_arguments(),
        ),
        tool(
            "test_elicitation_sep1330_enums",
            "Asks with every enum schema variant",
            no_arguments(),
        ),
        tool(
            "json_schema_2020_12_tool",
            "Has a JSON Schema 2020-12 input schema",
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {
                    "street": {"type": "string"}, "city": {"type": "string"}}}},
                "properties": {
                    "name": {"type": "string"},
                    "address": {"$ref": "#/$defs/address"},
                    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                    "phone": {"type": "string"},
                    "email": {"type": "string"}
                },
                "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                "then": {"required": ["phone"]},
                "else": {"required": ["email"]},
                "additionalProperties": false
            }),
        ),
    ];
    tools.extend(input_required::TOOLS.iter().map(|name| {
        tool(
            name,
            "Asks for input with an input_required result",
            no_arguments(),
        )
    }));
    tools.extend(diagnostics::TOOLS.iter().map(|name| {
        tool(
            name,
            "A diagnostic hook of the server-stateless scenario",
            no_arguments(),
        )
    }));
    tools
}

fn text(text: impl Into<String>) -> CallToolResponse {
    CallToolResponse::Complete(complete(
        json!({"content": [{"type": "text", "text": text.into()}]}),
    ))
}

/// Runs a session-era tool.
pub async fn call(
    request: CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> Result<CallToolResponse, ErrorData> {
    let name = request.name.as_ref();
    let arguments = request.arguments.unwrap_or_default();
    let responses = request.input_responses.as_ref();
    let content = |content: Value| -> CallToolResponse {
        CallToolResponse::Complete(complete(json!({"content": content})))
    };
    Ok(match name {
        "test_simple_text" => text("This is a simple text response for testing."),
        "test_image_content" => content(json!([{"type": "image", "data": PNG, "mimeType": "image/png"}])),
        "test_audio_content" => content(json!([{"type": "audio", "data": WAV, "mimeType": "audio/wav"}])),
        "test_embedded_resource" => content(json!([{"type": "resource", "resource": {
            "uri": "test://embedded-resource", "mimeType": "text/plain",
            "text": "This is an embedded resource content."}}])),
        "test_multiple_content_types" => content(json!([
            {"type": "text", "text": "Multiple content types test:"},
            {"type": "image", "data": PNG, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "test://mixed-content-resource",
                "mimeType": "application/json", "text": "{\"test\":\"data\",\"value\":123}"}}
        ])),
        "test_tool_with_logging" => {
            for (n, message) in ["Tool execution started", "Tool processing data", "Tool execution completed"]
                .into_iter()
                .enumerate()
            {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                log(context, message.to_owned()).await;
            }
            text("Tool with logging executed successfully")
        }
        "test_tool_with_progress" => {
            let token = context.meta.get_progress_token();
            for (n, progress) in [0.0, 50.0, 100.0].into_iter().enumerate() {
                if n > 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if let Some(token) = &token {
                    let update = ProgressNotificationParam::new(token.clone(), progress)
                        .with_total(100.0)
                        .with_message(format!("Completed step {progress} of 100"));
                    let _ = context.peer.notify_progress(update).await;
                }
            }
            text(token.map_or_else(|| "no progress token".to_owned(), |token| format!("{:?}", token.0)))
        }
        "test_error_handling" => CallToolResponse::Complete(CallToolResult::error(vec![
            rmcp::model::ContentBlock::text("This tool intentionally returns an error for testing"),
        ])),
        "test_sampling" => {
            let prompt = arguments.get("prompt").and_then(Value::as_str).unwrap_or_default();
            let params = json!({
                "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                "maxTokens": 100
            });
            match ask(context, responses, "sampling/createMessage", params).await {
                Ok(reply) => {
                    let said = reply["content"]["text"].as_str().unwrap_or("No response");
                    text(format!("LLM response: {said}"))
                }
                Err(response) => response,
            }
        }
        "test_elicitation" => {
            let message = arguments.get("message").and_then(Value::as_str).unwrap_or_default();
            elicit(context, responses, json!({
                "mode": "form", "message": message,
                "requestedSchema": {"type": "object", "properties": {
                    "response": {"type": "string", "description": "User's response"}},
                    "required": ["response"]}
            }), "User response").await
        }
        "test_url_elicitation" => {
            let message = arguments.get("message").and_then(Value::as_str).unwrap_or_default();
            elicit(context, responses, json!({
                "mode": "url", "message": message,
                "url": format!("https://example.com/{message}"),
                "elicitationId": format!("url-{message}")
            }), "URL elicitation").await
        }
        "test_slow_tool" => {
            let seconds = arguments.get("seconds").and_then(Value::as_f64).unwrap_or(1.0);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
                () = context.ct.cancelled() => {}
            }
            text(format!("slept {seconds}"))
        }
        "test_elicitation_sep1034_defaults" => elicit(context, responses, json!({
            "mode": "form",
            "message": "Please review and update the form fields with defaults",
            "requestedSchema": {"type": "object", "properties": {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {"type": "string", "description": "User status",
                    "enum": ["active", "inactive", "pending"], "default": "active"},
                "verified": {"type": "boolean", "description": "Verification status", "default": true}
            }, "required": []}
        }), "Elicitation completed").await,
        "test_elicitation_sep1330_enums" => elicit(context, responses, json!({
            "mode": "form",
            "message": "Please select options from the enum fields",
            "requestedSchema": {"type": "object", "properties": {
                "untitledSingle": {"type": "string", "description": "Select one option",
                    "enum": ["option1", "option2", "option3"]},
                "titledSingle": {"type": "string", "description": "Select one option with titles",
                    "oneOf": [{"const": "value1", "title": "First Option"},
                              {"const": "value2", "title": "Second Option"},
                              {"const": "value3", "title": "Third Option"}]},
                "legacyEnum": {"type": "string", "description": "Select one option (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]},
                "untitledMulti": {"type": "array", "description": "Select multiple options",
                    "minItems": 1, "maxItems": 3,
                    "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                "titledMulti": {"type": "array", "description": "Select multiple options with titles",
                    "minItems": 1, "maxItems": 3,
                    "items": {"anyOf": [{"const": "value1", "title": "First Choice"},
                                        {"const": "value2", "title": "Second Choice"},
                                        {"const": "value3", "title": "Third Choice"}]}}
            }, "required": []}
        }), "Elicitation completed").await,
        "json_schema_2020_12_tool" => text(format!(
            "JSON Schema 2020-12 tool called with: {}",
            Value::Object(arguments)
        )),
        _ => return Err(ErrorData::invalid_params(format!("Unknown tool: {name}"), None)),
    })
}

/// Asks the user with `params` and reports the answer as `"<label>: action=…, content=…"`.
async fn elicit(
    context: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
    params: Value,
    label: &str,
) -> CallToolResponse {
    match ask(context, responses, "elicitation/create", params).await {
        Ok(reply) => {
            let content = reply.get("content").cloned().unwrap_or_else(|| json!({}));
            let action = reply["action"].as_str().unwrap_or("?");
            text(format!("{label}: action={action}, content={content}"))
        }
        Err(response) => response,
    }
}

/// Puts a request to the client the way its revision asks: on a session, as a request of
/// its own; on a 2026-07-28 request, as an `input_required` result answered by a retry.
/// `Err` is the response to give instead (the question, or why it could not be asked).
async fn ask(
    context: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
    method: &str,
    params: Value,
) -> Result<Value, CallToolResponse> {
    let stateless = context
        .protocol_version()
        .is_some_and(|version| !version.has_initialize());
    if stateless {
        if let Some(answer) = responses.and_then(|responses| responses.get("request")) {
            return Ok(answer.clone());
        }
        let question = json!({"request": {"method": method, "params": params}});
        return Err(CallToolResponse::InputRequired(InputRequiredResult::new(
            Some(model(question)),
            None,
        )));
    }
    let answer = match method {
        "sampling/createMessage" => {
            let params: CreateMessageRequestParams = model(params);
            context
                .peer
                .create_message(params)
                .await
                .map(|result| serde_json::to_value(result).unwrap_or_default())
        }
        _ => {
            let params: ElicitRequestParams = model(params);
            context
                .peer
                .create_elicitation(params)
                .await
                .map(|result| serde_json::to_value(result).unwrap_or_default())
        }
    };
    answer.map_err(|error| text(format!("The client could not answer {method}: {error}")))
}
