//! `mcps tools`, `mcps call` and `mcps check` on upstreams started for the command alone.

use std::{path::Path, process::ExitCode};

use rmcp::model::{CallToolRequestParams, CallToolResponse};

use super::{Problems, ToolLine, print_tools};
use crate::{app::App, config::Config, gateway::Origin, upstream::Phase};

async fn started(config: Config) -> App {
    let app = App::new(config);
    // These commands open no registry: an OAuth upstream signs in with nothing kept.
    app.gateway().oauth().without_registry();
    app.start_upstreams();
    app.gateway().wait_started().await;
    app
}

pub async fn tools(config: Config, json: bool) -> anyhow::Result<ExitCode> {
    let app = started(config).await;
    let catalog = app.gateway().catalog();
    if json {
        let tools: Vec<_> = catalog.tools().iter().map(|entry| &entry.item).collect();
        println!("{}", serde_json::to_string_pretty(&tools)?);
    } else {
        print_tools(catalog.tools().iter().map(|entry| ToolLine {
            name: entry.exposed_name(),
            description: entry.item.description.as_deref(),
        }));
    }
    app.finish().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn call(
    config: Config,
    name: &str,
    arguments: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<ExitCode> {
    let app = started(config).await;
    let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
    let outcome = app.gateway().call_tool(params, &Origin::default()).await;
    app.finish().await;
    match outcome? {
        CallToolResponse::Complete(result) => {
            println!("{}", serde_json::to_string_pretty(&result)?);
            Ok(if result.is_error == Some(true) {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        other => {
            println!(
                "{}",
                serde_json::to_string_pretty(&rmcp::model::ServerResult::from(other))?
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

pub async fn check(config: Config, path: &Path) -> anyhow::Result<ExitCode> {
    println!("{}: configuration is valid", path.display());
    let virtual_servers = config.virtual_servers.clone();
    let file_upstreams: Vec<String> = config.upstreams.keys().cloned().collect();
    let app = started(config).await;
    let catalog = app.gateway().catalog();
    let mut problems = Problems::default();
    for upstream in app.gateway().upstreams().iter() {
        let state = upstream.state();
        let tools = catalog.tool_count(upstream);
        match &state.phase {
            Phase::Failed(reason) | Phase::Degraded(reason) => {
                problems.found(format!("  {:<20} FAILED  {reason}", upstream.name()));
            }
            Phase::NeedsAuthorization(how) => {
                println!("  {:<20} needs authorization: {how}", upstream.name());
            }
            phase => println!(
                "  {:<20} {:<7} {tools} tools",
                upstream.name(),
                phase.as_str()
            ),
        }
    }
    for entry in catalog.tools() {
        println!("    {}", entry.exposed_name());
    }
    for collision in catalog.collisions() {
        problems.found(format!("  COLLISION {collision}"));
    }
    for unmatched in app.gateway().unmatched_overrides() {
        problems.found(format!("  OVERRIDE {unmatched}"));
    }
    for (name, server) in &virtual_servers {
        let view = app.gateway().view(name);
        let narrowed = app.gateway().catalog_for(view.as_deref());
        let tools: Vec<&str> = narrowed.tools().iter().map(|t| t.exposed_name()).collect();
        problems.virtual_server(name, &tools);
        for collision in narrowed.collisions() {
            problems.found(format!("    COLLISION {collision}"));
        }
        for upstream in server
            .upstreams
            .iter()
            .filter(|u| !file_upstreams.contains(u))
        {
            println!(
                "    note: no upstream {upstream:?} in this file (one added through the API?)"
            );
        }
    }
    app.finish().await;
    Ok(problems.exit_code())
}
