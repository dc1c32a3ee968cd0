//! The resources, resource template and prompts of the conformance scenarios (`resources-*`,
//! `prompts-*`, `sep-2164-resource-not-found`).

use rmcp::{
    ErrorData,
    model::{GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate},
};
use serde_json::{Map, Value, json};

use super::{complete, model, tools::PNG};

pub fn resources() -> Vec<Resource> {
    model(json!([
        {"uri": "test://static-text", "name": "static-text", "title": "Static Text Resource",
         "description": "A static text resource for testing", "mimeType": "text/plain"},
        {"uri": "test://static-binary", "name": "static-binary", "title": "Static Binary Resource",
         "description": "A static binary resource (image) for testing", "mimeType": "image/png"},
        {"uri": "test://watched-resource", "name": "watched-resource", "title": "Watched Resource",
         "description": "A resource that can be subscribed to", "mimeType": "text/plain"}
    ]))
}

pub fn templates() -> Vec<ResourceTemplate> {
    model(json!([
        {"uriTemplate": "test://template/{id}/data", "name": "template", "title": "Resource Template",
         "description": "A resource template with parameter substitution", "mimeType": "application/json"}
    ]))
}

pub fn read(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let contents = match uri {
        "test://static-text" => json!([{"uri": uri, "mimeType": "text/plain",
            "text": "This is the content of the static text resource."}]),
        "test://static-binary" => json!([{"uri": uri, "mimeType": "image/png", "blob": PNG}]),
        "test://watched-resource" => json!([{"uri": uri, "mimeType": "text/plain",
            "text": "Watched resource content"}]),
        _ => match uri
            .strip_prefix("test://template/")
            .and_then(|rest| rest.strip_suffix("/data"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
        {
            Some(id) => json!([{"uri": uri, "mimeType": "application/json",
                "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()}]),
            None => {
                return Err(ErrorData::resource_not_found(
                    "Resource not found",
                    Some(json!({"uri": uri})),
                ));
            }
        },
    };
    Ok(complete(json!({"contents": contents})))
}

pub fn prompts() -> Vec<Prompt> {
    let mut prompts: Vec<Prompt> = model(json!([
        {"name": "test_simple_prompt", "title": "Simple Test Prompt",
         "description": "A simple prompt without arguments"},
        {"name": "test_prompt_with_arguments", "title": "Prompt With Arguments",
         "description": "A prompt with required arguments", "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true}]},
        {"name": "test_prompt_with_embedded_resource", "title": "Prompt With Embedded Resource",
         "description": "A prompt that includes an embedded resource", "arguments": [
            {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
        {"name": "test_prompt_with_image", "title": "Prompt With Image",
         "description": "A prompt that includes image content"}
    ]));
    prompts.push(model(json!({
        "name": super::input_required::PROMPT,
        "description": "Asks for context with an input_required result"
    })));
    prompts
}

pub fn prompt(name: &str, arguments: Map<String, Value>) -> Result<GetPromptResult, ErrorData> {
    let argument = |key: &str| {
        arguments
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let messages = match name {
        "test_simple_prompt" => json!([{"role": "user", "content": {"type": "text",
            "text": "This is a simple prompt for testing."}}]),
        "test_prompt_with_arguments" => json!([{"role": "user", "content": {"type": "text",
            "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", argument("arg1"), argument("arg2"))}}]),
        "test_prompt_with_embedded_resource" => json!([
            {"role": "user", "content": {"type": "resource", "resource": {
                "uri": argument("resourceUri"), "mimeType": "text/plain",
                "text": "Embedded resource content for testing."}}},
            {"role": "user", "content": {"type": "text",
                "text": "Please process the embedded resource above."}}
        ]),
        "test_prompt_with_image" => json!([
            {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
            {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}
        ]),
        _ => {
            return Err(ErrorData::invalid_params(
                format!("Unknown prompt: {name}"),
                None,
            ));
        }
    };
    Ok(complete(json!({"messages": messages})))
}
