//! The upstream the MCP conformance suite (`@modelcontextprotocol/conformance`) tests through
//! the gateway: an rmcp server over streamable HTTP, both protocol eras, offering the tools,
//! resources and prompts that the suite's server scenarios call (names and payloads as the
//! scenarios describe them).
//!
//! `conformance_fixture --stdio` serves stdio instead; with `--odd-names`, it also serves the
//! tools of `tools::ODD_NAMES`, and with `--header-arguments` the tool `tools::ROUTED`.
//!
//! `conformance_fixture [--port N]` prints `listening on http://127.0.0.1:N/mcp` once it
//! accepts connections.

#![allow(
    deprecated,
    reason = "logging, sampling and roots are deprecated by SEP-2577; the session-era scenarios use them"
)]

#[path = "../shared/serve_http.rs"]
mod serve_http;

mod catalog;
mod diagnostics;
mod input_required;
mod tasks;
mod tools;

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, CompleteRequestParams,
        CompleteResult, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
        Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, LoggingMessageNotificationParam, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        SetLevelRequestParams, SubscribeRequestParams, SubscriptionFilter, Tool,
        UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
    transport::StreamableHttpServerConfig,
};
use serde_json::json;

/// Parses JSON into an rmcp model type; the fixture's payloads are literals, so a failure is
/// a bug in this file.
fn model<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("fixture literal fits the MCP schema")
}

/// A complete result of the given model type: like [`model`], with the `resultType` that
/// 2026-07-28 clients require (rmcp removes it for session-era clients).
fn complete<T: serde::de::DeserializeOwned>(mut value: serde_json::Value) -> T {
    value["resultType"] = json!("complete");
    model(value)
}

#[derive(Clone)]
struct Fixture {
    input_required: Arc<input_required::Codec>,
    changes: diagnostics::ListChanges,
    /// The tasks of the tasks extension's scenarios.
    tasks: tasks::Tasks,
    /// Whether this session subscribed to [`diagnostics::WATCHED`] (each session has its own).
    watching: Arc<AtomicBool>,
    /// Whether the tools of [`tools::ODD_NAMES`] are served (`--odd-names`).
    odd_names: bool,
    /// Whether [`tools::ROUTED`] is served (`--header-arguments`).
    header_arguments: bool,
}

impl Fixture {
    /// The tools it always serves, and those its flags add.
    fn fixed_tools(&self) -> Vec<Tool> {
        let mut tools = tools::list();
        tools.extend(tasks::list());
        if self.odd_names {
            tools.extend(tools::odd_names());
        }
        if self.header_arguments {
            tools.push(tools::routed());
        }
        tools
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_resources_list_changed()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_logging()
                .enable_completions()
                .enable_tasks()
                .build(),
        )
        .with_server_info(Implementation::new("mcps-conformance-fixture", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.fixed_tools();
        tools.extend(self.changes.added_tools().iter().map(|name| {
            tools::tool(
                name,
                "Added by test_trigger_tool_change",
                json!({"type": "object"}),
            )
        }));
        Ok(ListToolsResult::with_all_items(tools))
    }

    /// What rmcp's server checks a 2026-07-28 call's `Mcp-Param-*` headers against.
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.fixed_tools()
            .into_iter()
            .find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(response) = self.input_required.call_tool(&request, &context)? {
            return Ok(response);
        }
        if let Some(answer) = self.tasks.call(&request, &context).await {
            return answer;
        }
        if let Some(response) = diagnostics::call(&request.name, &self.changes, &context).await? {
            return Ok(response);
        }
        if self.odd_names
            && let Some(response) = tools::answer_odd_name(&request.name)
        {
            return Ok(response);
        }
        if self.header_arguments && request.name == tools::ROUTED {
            return Ok(tools::answer_routed(&request.arguments.unwrap_or_default()));
        }
        tools::call(request, &context).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let task = self.tasks.manager().get_task(&request.task_id)?;
        Ok(GetTaskResult::new(task))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let manager = self.tasks.manager();
        manager.update_task(&request.task_id, request.input_responses)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks.manager().cancel_task(&request.task_id)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let filter = context.accepted().clone();
        let wants_tools = filter.tools_list_changed == Some(true);
        let wants_prompts = filter.prompts_list_changed == Some(true);
        let wants_resources = filter.resources_list_changed == Some(true);
        let wants_watched = filter
            .resource_subscriptions
            .as_ref()
            .is_some_and(|uris| uris.iter().any(|uri| uri == diagnostics::WATCHED));
        let mut tools = self.changes.tools.subscribe();
        let mut prompts = self.changes.prompts.subscribe();
        let mut resources = self.changes.resources.subscribe();
        let mut watched = self.changes.watched_updates.subscribe();
        loop {
            let sent = tokio::select! {
                changed = watched.changed() => match changed {
                    Ok(()) if wants_watched => {
                        context.sink().notify_resource_updated(diagnostics::WATCHED).await
                    }
                    Ok(()) => Ok(()),
                    Err(_) => return Ok(()),
                },
                changed = tools.changed() => match changed {
                    Ok(()) if wants_tools => context.sink().notify_tool_list_changed().await,
                    Ok(()) => Ok(()),
                    Err(_) => return Ok(()),
                },
                changed = resources.changed() => match changed {
                    Ok(()) if wants_resources => context.sink().notify_resource_list_changed().await,
                    Ok(()) => Ok(()),
                    Err(_) => return Ok(()),
                },
                changed = prompts.changed() => match changed {
                    Ok(()) if wants_prompts => context.sink().notify_prompt_list_changed().await,
                    Ok(()) => Ok(()),
                    Err(_) => return Ok(()),
                },
                () = context.cancelled() => return Ok(()),
            };
            if sent.is_err() {
                return Ok(());
            }
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let mut resources = catalog::resources();
        resources.extend(self.changes.added_resources().iter().map(|uri| {
            model::<rmcp::model::Resource>(
                json!({"uri": uri, "name": uri, "mimeType": "text/plain"}),
            )
        }));
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            catalog::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        catalog::read(&request.uri).map(ReadResourceResponse::Complete)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri == diagnostics::WATCHED {
            self.watching.store(true, Ordering::Relaxed);
        }
        log(&context, format!("Subscribed to resource: {}", request.uri)).await;
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri == diagnostics::WATCHED {
            self.watching.store(false, Ordering::Relaxed);
        }
        log(
            &context,
            format!("Unsubscribed from resource: {}", request.uri),
        )
        .await;
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let mut prompts = catalog::prompts();
        prompts.extend(self.changes.added_prompts().iter().map(|name| {
            model::<rmcp::model::Prompt>(
                json!({"name": name, "description": "Added by test_trigger_prompt_change"}),
            )
        }));
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if let Some(response) = self.input_required.get_prompt(&request, &context)? {
            return Ok(response);
        }
        catalog::prompt(&request.name, request.arguments.unwrap_or_default())
            .map(GetPromptResponse::Complete)
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(complete(
            json!({"completion": {"values": [], "total": 0, "hasMore": false}}),
        ))
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        self.changes
            .sessions
            .add(context.peer, self.watching.clone());
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        log(&context, format!("Log level set to: {:?}", request.level)).await;
        Ok(())
    }
}

/// Sends an info log message to the client of `context`.
async fn log(context: &RequestContext<RoleServer>, message: String) {
    let params: LoggingMessageNotificationParam = model(json!({
        "level": "info",
        "logger": "conformance-fixture",
        "data": message,
    }));
    let _ = context.peer.notify_logging_message(params).await;
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args()
        .skip_while(|arg| arg != "--port")
        .nth(1)
        .map_or(0, |port| port.parse().expect("--port takes a number"));
    let fixture = Fixture {
        input_required: Arc::new(input_required::Codec::new()),
        changes: diagnostics::ListChanges::new(),
        tasks: tasks::Tasks::default(),
        watching: Arc::default(),
        odd_names: std::env::args().any(|arg| arg == "--odd-names"),
        header_arguments: std::env::args().any(|arg| arg == "--header-arguments"),
    };
    if std::env::args().any(|arg| arg == "--stdio") {
        let running = fixture
            .serve(rmcp::transport::stdio())
            .await
            .map_err(std::io::Error::other)?;
        running.waiting().await.map_err(std::io::Error::other)?;
        return Ok(());
    }
    let config = |port: u16| {
        StreamableHttpServerConfig::default().with_allowed_origins([
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ])
    };
    let per_session = move || Fixture {
        watching: Arc::default(),
        ..fixture.clone()
    };
    serve_http::serve(port, config, per_session).await
}
