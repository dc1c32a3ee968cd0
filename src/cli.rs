//! The commands that show a gateway's catalog or call through it: `mcps tools`, `mcps call`
//! and `mcps check`. Each uses the gateway already running on the config's address when one
//! answers, and says so: a call then shows in that gateway's history, and no second copy of
//! every upstream starts. Otherwise, or with `--local`, it starts the upstreams for itself.

mod local;
mod remote;
mod running;

use std::{path::Path, process::ExitCode};

use anyhow::Context;

pub use self::running::{RunningGateway, base_url, client_for};
use crate::config::Config;

/// `mcps tools`.
pub async fn tools(config: Config, json: bool, local: bool) -> anyhow::Result<ExitCode> {
    match running(&config, local).await {
        Some(gateway) => remote::tools(&gateway, json).await,
        None => local::tools(config, json).await,
    }
}

/// `mcps call`: `args` is the arguments' JSON object.
pub async fn call(config: Config, name: &str, args: &str, local: bool) -> anyhow::Result<ExitCode> {
    let arguments: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(args).context("--args must be a JSON object")?;
    match running(&config, local).await {
        Some(gateway) => remote::call(&gateway, name, arguments).await,
        None => local::call(config, name, arguments).await,
    }
}

/// `mcps check`: the file is valid (it was loaded), then its upstreams and virtual servers.
pub async fn check(config: Config, path: &Path, local: bool) -> anyhow::Result<ExitCode> {
    match running(&config, local).await {
        Some(gateway) => remote::check(&gateway, &config, path).await,
        None => local::check(config, path).await,
    }
}

/// The gateway running on the config's address, unless `local` or none answers.
async fn running(config: &Config, local: bool) -> Option<RunningGateway> {
    if local {
        return None;
    }
    let gateway = RunningGateway::find(&base_url(config).ok()?).await?;
    eprintln!(
        "mcps: using the gateway running at {} (--local starts the upstreams here instead)",
        gateway.base()
    );
    Some(gateway)
}

/// One line of `mcps tools`.
struct ToolLine<'a> {
    name: &'a str,
    description: Option<&'a str>,
}

fn print_tools<'a>(tools: impl Iterator<Item = ToolLine<'a>>) {
    for tool in tools {
        let first_line = tool.description.unwrap_or("").lines().next().unwrap_or("");
        println!("{:<40} {first_line}", tool.name);
    }
}

/// What `mcps check` found wrong, printed as found.
#[derive(Default)]
struct Problems(usize);

impl Problems {
    fn found(&mut self, line: String) {
        self.0 += 1;
        println!("{line}");
    }

    /// A virtual server's line: its tools, or that it has none.
    fn virtual_server(&mut self, name: &str, tools: &[&str]) {
        if tools.is_empty() {
            self.found(format!(
                "  virtual server {name}: NO TOOLS (check its upstreams and patterns)"
            ));
        } else {
            println!("  virtual server {name}: {}", tools.join(", "));
        }
    }

    fn exit_code(&self) -> ExitCode {
        if self.0 == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
