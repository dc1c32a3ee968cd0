//! The tasks extension's scenarios (SEP-2663), served natively: rmcp's `TaskManager` runs
//! the task-supporting tools as tasks for a client that declares the extension. The gateway
//! passes such an upstream's tasks through (its `tasks/*` go to the upstream), where the
//! TypeScript and Python fixtures, whose SDKs know nothing of tasks, have the gateway run
//! their tools as tasks.

use std::time::Duration;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities,
        CreateTaskResult, InputRequest, InputRequiredResult, Tool,
    },
    service::RequestContext,
    task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions},
};
use serde_json::{Value, json};

use super::{complete, model, tools::tool};

/// The scenarios' tools (`greet` answers at once; the others are tasks).
pub fn list() -> Vec<Tool> {
    let object = |properties: Value| json!({"type": "object", "properties": properties});
    vec![
        tool(
            "greet",
            "Greets by name at once",
            object(json!({"name": {"type": "string"}})),
        ),
        tool(
            "slow_compute",
            "Works for `seconds` seconds, then answers",
            object(json!({"seconds": {"type": "number"}, "label": {"type": "string"}})),
        ),
        tool(
            "failing_job",
            "Works a second, then reports a tool error",
            object(json!({})),
        ),
        tool(
            "protocol_error_job",
            "Works a second, then fails with a JSON-RPC error",
            object(json!({})),
        ),
        tool(
            "confirm_delete",
            "Asks to confirm, then deletes",
            object(json!({"filename": {"type": "string"}})),
        ),
        tool(
            "multi_input",
            "Asks two questions at once",
            object(json!({})),
        ),
        tool(
            "test_tool_with_task",
            "Asks the user's name, then works as a task",
            object(json!({})),
        ),
    ]
}

fn text(text: impl Into<String>) -> CallToolResult {
    complete(json!({"content": [{"type": "text", "text": text.into()}]}))
}

fn confirmation(message: &str) -> InputRequest {
    model(
        json!({"method": "elicitation/create", "params": {"message": message,
        "requestedSchema": {"type": "object", "properties": {
            "confirm": {"type": "boolean"}, "name": {"type": "string"}}}}}),
    )
}

/// What an elicitation answer's `content` says under `key`.
fn said(answer: &Value, key: &str) -> Value {
    answer["content"][key].clone()
}

/// Sleeps `seconds`, unless the task is cancelled first.
async fn work(context: &TaskContext, seconds: f64) -> Result<(), TaskExit> {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))) => Ok(()),
        () = context.cancelled() => Err(TaskExit::Cancelled),
    }
}

#[derive(Clone, Default)]
pub struct Tasks {
    manager: TaskManager,
}

impl Tasks {
    pub fn manager(&self) -> &TaskManager {
        &self.manager
    }

    /// Answers the call if it is one of the scenarios' tools.
    pub async fn call(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Option<Result<CallToolResponse, ErrorData>> {
        let arguments = Value::Object(request.arguments.clone().unwrap_or_default());
        let takes_tasks = context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.supports_tasks());
        let needs_tasks = || {
            Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_tasks().build(),
            ))
        };
        let answer = match request.name.as_ref() {
            "greet" => {
                let name = arguments["name"].as_str().unwrap_or("world");
                Ok(CallToolResponse::Complete(text(format!("Hello, {name}!"))))
            }
            // Without tasks, the optional ones answer in the call itself.
            "slow_compute" if !takes_tasks => {
                let seconds = arguments["seconds"].as_f64().unwrap_or(0.0);
                let label = arguments["label"].as_str().unwrap_or_default();
                tokio::time::sleep(Duration::from_secs_f64(seconds.max(0.0))).await;
                Ok(CallToolResponse::Complete(text(format!(
                    "computed {label} in {seconds}s"
                ))))
            }
            "protocol_error_job" if !takes_tasks => {
                Err(ErrorData::internal_error("the job broke down", None))
            }
            // They ask within a task, and cannot without one.
            "confirm_delete" | "multi_input" if !takes_tasks => Ok(CallToolResponse::Complete(
                complete(json!({"content": [{"type": "text",
                    "text": "asks within a task: declare io.modelcontextprotocol/tasks"}],
                    "isError": true})),
            )),
            _ if !takes_tasks && list().iter().any(|tool| tool.name == request.name) => {
                needs_tasks()
            }
            "slow_compute" => {
                let seconds = arguments["seconds"].as_f64().unwrap_or(0.0);
                let label = arguments["label"].as_str().unwrap_or_default().to_owned();
                Ok(self.spawn(move |context| async move {
                    work(&context, seconds).await?;
                    Ok(text(format!("computed {label} in {seconds}s")))
                }))
            }
            "failing_job" => Ok(self.spawn(|context| async move {
                work(&context, 1.0).await?;
                Ok(complete(
                    json!({"content": [{"type": "text", "text": "the job failed"}],
                                   "isError": true}),
                ))
            })),
            "protocol_error_job" => Ok(self.spawn(|context| async move {
                work(&context, 1.0).await?;
                Err(TaskExit::Error(ErrorData::internal_error(
                    "the job broke down",
                    None,
                )))
            })),
            "confirm_delete" => {
                let filename = arguments["filename"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                Ok(self.spawn(move |context| async move {
                    let asked = confirmation(&format!("Delete {filename}?"));
                    let answer = context.request_input("confirm", asked).await?;
                    Ok(match said(&answer, "confirm") {
                        Value::Bool(true) => text(format!("deleted {filename}")),
                        _ => text(format!("kept {filename}")),
                    })
                }))
            }
            "multi_input" => Ok(self.spawn(|context| async move {
                let (first, second) = tokio::join!(
                    context.request_input("first", confirmation("First?")),
                    context.request_input("second", confirmation("Second?")),
                );
                let (first, second) = (first?, second?);
                Ok(text(format!(
                    "got {} and {}",
                    said(&first, "name"),
                    said(&second, "name")
                )))
            })),
            "test_tool_with_task" => {
                let name = request
                    .input_responses
                    .as_ref()
                    .and_then(|responses| responses.get("user_name"))
                    .map(|answer| said(answer, "name"));
                match name {
                    // The input round comes first, before the task.
                    None => Ok(CallToolResponse::InputRequired(
                        model::<InputRequiredResult>(
                            json!({"resultType": "input_required", "inputRequests": {"user_name": {
                            "method": "elicitation/create", "params": {"message": "What is your name?",
                            "requestedSchema": {"type": "object", "properties": {
                                "name": {"type": "string"}}, "required": ["name"]}}}}}),
                        ),
                    )),
                    Some(name) => Ok(self.spawn(move |context| async move {
                        work(&context, 0.5).await?;
                        let name = name.as_str().unwrap_or_default().to_owned();
                        Ok(text(format!("Hello, {name}: the work is done")))
                    })),
                }
            }
            _ => return None,
        };
        Some(answer)
    }

    fn spawn<F, Fut>(&self, work: F) -> CallToolResponse
    where
        F: FnOnce(TaskContext) -> Fut,
        Fut: Future<Output = Result<CallToolResult, TaskExit>> + Send + 'static,
    {
        let task = self
            .manager
            .spawn(TaskOptions::new(), |context| Box::pin(work(context)));
        CallToolResponse::Task(CreateTaskResult::new(task))
    }
}
