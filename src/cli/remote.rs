//! `mcps tools`, `mcps call` and `mcps check` on the gateway running on the config's address.

use std::{path::Path, process::ExitCode};

use serde_json::Value;

use super::{Problems, RunningGateway, ToolLine, print_tools, running::said};
use crate::config::Config;

pub async fn tools(gateway: &RunningGateway, json: bool) -> anyhow::Result<ExitCode> {
    let tools = gateway.tools("/mcp").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tools)?);
    } else {
        print_tools(tools.iter().map(|tool| ToolLine {
            name: tool["name"].as_str().unwrap_or(""),
            description: tool["description"].as_str(),
        }));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn call(
    gateway: &RunningGateway,
    name: &str,
    arguments: serde_json::Map<String, Value>,
) -> anyhow::Result<ExitCode> {
    let mut result = gateway
        .call(name, Value::Object(arguments))
        .await?
        .map_err(|error| anyhow::anyhow!("{}", said(&error)))?;
    let complete = match result.as_object_mut() {
        // What a complete result adds in 2026-07-28; the command prints what it printed
        // before that revision.
        Some(fields) => match fields.get("resultType").and_then(Value::as_str) {
            None => true,
            Some("complete") => {
                fields.remove("resultType");
                true
            }
            Some(_) => false,
        },
        None => false,
    };
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(if complete && result["isError"] != true {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The running gateway's upstreams and virtual servers. It runs the configuration it last
/// loaded: a change to the file shows after a reload.
pub async fn check(
    gateway: &RunningGateway,
    config: &Config,
    path: &Path,
) -> anyhow::Result<ExitCode> {
    println!("{}: configuration is valid", path.display());
    println!(
        "  (the running gateway's state: changes to the file show once it reloads; name \
         clashes and tool overrides that match nothing are in its log)"
    );
    let health = gateway.health().await?;
    let mut problems = Problems::default();
    for upstream in health["upstreams"].as_array().into_iter().flatten() {
        let name = upstream["name"].as_str().unwrap_or("?");
        let state = upstream["state"].as_str().unwrap_or("?");
        let why = upstream["error"]
            .as_str()
            .or_else(|| upstream["last_error"].as_str())
            .unwrap_or("");
        match state {
            "failed" | "degraded" => problems.found(format!("  {name:<20} FAILED  {why}")),
            "needs_authorization" => println!("  {name:<20} needs authorization: {why}"),
            state => println!("  {name:<20} {state:<7} {} tools", upstream["tools"]),
        }
    }
    for tool in gateway.tools("/mcp").await? {
        println!("    {}", tool["name"].as_str().unwrap_or(""));
    }
    for name in config.virtual_servers.keys() {
        match gateway.tools(&format!("/mcp/{name}")).await {
            Ok(tools) => {
                let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
                problems.virtual_server(name, &names);
            }
            Err(error) => problems.found(format!("  virtual server {name}: {error}")),
        }
    }
    Ok(problems.exit_code())
}
