//! How a tool call runs as a task.
//!
//! The call goes the way any 2026-07-28 call goes (`Gateway::call_tool`: routed, recorded,
//! bridged to a session-era upstream), on a task of the gateway's own, so it outlives the
//! client's request. Its first answer decides what the client is told:
//! - within `tasks.inline_ms`, an input round (`input_required`) is given at once: the call
//!   is still gathering what it needs (the SEP's MRTR rounds before a task), and the
//!   client's retry starts the call again;
//! - within that time, an `optional` tool's result (or error) is given at once (the SEP's
//!   immediate-result shortcut);
//! - anything else makes it a task, and the client gets `CreateTaskResult`.
//!
//! As a task, each input round of the call becomes the task's `input_required`, with the
//! call's own input requests; once `tasks/update` has answered them all, the call is sent
//! again with the answers (and its `requestState`), as a 2026-07-28 client would. Its result
//! completes the task (a tool error too: `completed` with `isError`), a JSON-RPC error fails
//! it, and `tasks/cancel` cancels the call upstream and the task.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, InputRequests, InputResponses, JsonObject,
    TASKS_EXTENSION_ID, TaskPayload, Tool,
};
use serde_json::Value;
use tokio::sync::oneshot;

use super::{Running, error_object};
use crate::{
    config::TaskSupport,
    error::GatewayError,
    gateway::{Gateway, Origin, StatelessCaller, View, catalog::Entry},
    registry,
    security::Identity,
    sync::lock,
};

/// Whether the client's request still waits for the call's first answer.
enum Phase {
    Waiting(oneshot::Sender<First>),
    /// The client was told of the task, or is about to be.
    Task,
    /// The client was given the first answer itself.
    Answered,
}

/// What the client's request is told.
enum First {
    Answer(Result<CallToolResponse, GatewayError>),
    Task,
}

type Shared = Arc<std::sync::Mutex<Phase>>;

impl Gateway {
    /// A `tools/call`: run as a task when its tool's calls do and the client takes tasks
    /// (see [`TaskSupport`]); a tool that runs as a task alone refuses a client that does not.
    pub async fn call_tool_or_task(
        &self,
        params: CallToolRequestParams,
        origin: &Origin,
    ) -> Result<CallToolResponse, GatewayError> {
        let support = self.task_support(&params.name, origin.view.as_deref());
        let takes_tasks = origin.takes_tasks();
        match (support, takes_tasks) {
            (TaskSupport::Forbidden, _) | (TaskSupport::Optional, false) => {
                let upstream = self
                    .catalog_for(origin.view.as_deref())
                    .route(&params.name)
                    .map(|route| route.upstream.name().to_owned());
                match (self.call_tool(params, origin).await?, upstream) {
                    // An upstream that serves tasks made one: passed through.
                    (CallToolResponse::Task(created), Some(upstream)) => {
                        let owner = origin.principal.as_ref().map(Identity::key);
                        Ok(CallToolResponse::Task(
                            self.tasks.pass(created, &upstream, owner),
                        ))
                    }
                    (answer, _) => Ok(answer),
                }
            }
            (TaskSupport::Required, false) => Err(GatewayError::TasksRequired {
                tool: params.name.to_string(),
            }),
            (_, true) => self.start_task(params, origin, support).await,
        }
    }

    /// Whether calls of tool `name` (in `view`) run as tasks: the last override that says
    /// (a virtual server's over its upstream's), else its upstream's `task`.
    pub fn task_support(&self, name: &str, view: Option<&View>) -> TaskSupport {
        let catalog = self.catalog_for(view);
        catalog.route(name).map(task_support_of).unwrap_or_default()
    }

    async fn start_task(
        &self,
        params: CallToolRequestParams,
        origin: &Origin,
        support: TaskSupport,
    ) -> Result<CallToolResponse, GatewayError> {
        let (Some(gateway), Some((tracker, shutdown))) = (self.me.upgrade(), self.runtime.get())
        else {
            return Err(GatewayError::ShuttingDown);
        };
        let owner = origin.principal.as_ref().map(Identity::key);
        let task = self.tasks.open(owner);
        let (first, mut told) = oneshot::channel();
        let phase: Shared = Arc::new(std::sync::Mutex::new(Phase::Waiting(first)));
        let run = gateway.run(task.clone(), params, task_origin(origin, &task), support);
        let (running, shutdown) = (task.clone(), shutdown.clone());
        let shared = phase.clone();
        tracker.spawn(async move {
            let gateway = run.gateway.clone();
            tokio::select! {
                () = run.run(shared) => {}
                () = shutdown.cancelled() => {
                    running.cancel.cancel();
                    let error = rmcp::ErrorData::internal_error(super::ABANDONED, None);
                    let failed = TaskPayload::Failed { error: error_object(&error) };
                    gateway.tasks.end(&running, failed).await;
                }
            }
        });
        let inline = tokio::time::sleep(self.tasks.config.inline());
        tokio::select! {
            told = &mut told => return self.told(told, &task),
            () = inline => {}
            // Before it is a task, the call is the client's request's: cancelled with it.
            () = origin.cancel.cancelled() => {
                if claim(&phase, Phase::Answered) {
                    task.cancel.cancel();
                    return Err(GatewayError::Cancelled);
                }
            }
        }
        let claimed = claim(&phase, Phase::Task);
        if claimed {
            self.tasks.publish(&task).await;
            return Ok(CallToolResponse::Task(self.tasks.created(&task)));
        }
        let told = told.await;
        self.told(told, &task)
    }

    fn told(
        &self,
        told: Result<First, oneshot::error::RecvError>,
        task: &Running,
    ) -> Result<CallToolResponse, GatewayError> {
        match told {
            Ok(First::Answer(answer)) => answer,
            Ok(First::Task) => Ok(CallToolResponse::Task(self.tasks.created(task))),
            Err(_) => Err(GatewayError::Internal {
                reason: "the task ended before it was created".into(),
            }),
        }
    }

    fn run(
        self: Arc<Self>,
        task: Arc<Running>,
        params: CallToolRequestParams,
        origin: Origin,
        support: TaskSupport,
    ) -> Run {
        Run {
            gateway: self,
            task,
            params,
            origin,
            support,
        }
    }
}

/// Moves `phase` to `to` if the client's request still waits for the first answer.
fn claim(phase: &Shared, to: Phase) -> bool {
    let mut phase = lock(phase);
    if matches!(*phase, Phase::Waiting(_)) {
        *phase = to;
        return true;
    }
    false
}

/// One task's call, from its first answer to its end.
struct Run {
    gateway: Arc<Gateway>,
    task: Arc<Running>,
    params: CallToolRequestParams,
    origin: Origin,
    support: TaskSupport,
}

impl Run {
    async fn run(mut self, phase: Shared) {
        loop {
            let answer = self
                .gateway
                .call_tool(self.params.clone(), &self.origin)
                .await;
            let answer = match self.first(&phase, answer).await {
                Some(answer) => answer,
                None => return,
            };
            let payload = match answer {
                Ok(CallToolResponse::InputRequired(asked)) => {
                    let requests = asked.input_requests.unwrap_or_default();
                    let Some(answers) = self.asked(requests).await else {
                        return;
                    };
                    self.params.input_responses = Some(answers);
                    self.params.request_state = asked.request_state;
                    continue;
                }
                Ok(CallToolResponse::Complete(result)) => TaskPayload::Completed {
                    result: object_of(&result),
                },
                Ok(other) => TaskPayload::Failed {
                    error: error_object(&rmcp::ErrorData::internal_error(
                        format!("the upstream answered the task's call with {other:?}"),
                        None,
                    )),
                },
                Err(GatewayError::Cancelled) => TaskPayload::Cancelled,
                Err(error) => TaskPayload::Failed {
                    error: error_object(&rmcp::ErrorData::from(error)),
                },
            };
            return self.end(payload).await;
        }
    }

    /// Gives `answer` to the client's request still waiting for it, if it may be given at
    /// once (`None`: the run is over); otherwise makes sure the client is told of the task,
    /// and hands the answer back to be kept in it.
    async fn first(
        &self,
        phase: &Shared,
        answer: Result<CallToolResponse, GatewayError>,
    ) -> Option<Result<CallToolResponse, GatewayError>> {
        let told = {
            let mut phase = lock(phase);
            match std::mem::replace(&mut *phase, Phase::Task) {
                Phase::Waiting(told) => told,
                Phase::Task => return Some(answer),
                // The client's request was given up (it cancelled): no task to keep.
                Phase::Answered => {
                    *phase = Phase::Answered;
                    return None;
                }
            }
        };
        let at_once = match &answer {
            Ok(CallToolResponse::InputRequired(_)) => true,
            _ => self.support == TaskSupport::Optional,
        };
        if at_once {
            *lock(phase) = Phase::Answered;
            let _ = told.send(First::Answer(answer));
            return None;
        }
        // Created before the client hears of it, with what it already knows.
        let tasks = &self.gateway.tasks;
        tasks.publish(&self.task).await;
        let _ = told.send(First::Task);
        Some(answer)
    }

    /// Puts `requests` to the client as the task's `input_required` and waits for every
    /// answer (`None`: it was cancelled, or the task expired first).
    async fn asked(&self, requests: InputRequests) -> Option<InputResponses> {
        let task = &self.task;
        task.set(TaskPayload::InputRequired {
            input_requests: requests,
        });
        self.gateway.tasks.record(task).await;
        let left = task.expires_ms - registry::now_ms();
        let expiry = tokio::time::sleep(std::time::Duration::from_millis(left.max(0) as u64));
        tokio::pin!(expiry);
        loop {
            let answered = task.answered.notified();
            if let Some(answers) = task.answers_when_done() {
                return Some(answers);
            }
            tokio::select! {
                () = answered => {}
                () = task.cancel.cancelled() => {
                    self.end(TaskPayload::Cancelled).await;
                    return None;
                }
                () = &mut expiry => {
                    let error = rmcp::ErrorData::internal_error(
                        "the task expired before its input requests were answered",
                        None,
                    );
                    self.end(TaskPayload::Failed { error: error_object(&error) }).await;
                    return None;
                }
            }
        }
    }

    async fn end(&self, payload: TaskPayload) {
        self.gateway.tasks.end(&self.task, payload).await;
    }
}

/// Who the task's call comes from: the client (its principal, view, credential and what it
/// can answer) as a 2026-07-28 client that waits for no stream, stopped by the task's own
/// cancellation. The upstream is not told the client takes tasks: the task is the gateway's.
fn task_origin(origin: &Origin, task: &Running) -> Origin {
    let capabilities = origin.capabilities.as_deref().map(|capabilities| {
        let mut capabilities = capabilities.clone();
        if let Some(extensions) = capabilities.extensions.as_mut() {
            extensions.remove(TASKS_EXTENSION_ID);
        }
        Arc::new(capabilities)
    });
    Origin {
        cancel: task.cancel.clone(),
        progress: None,
        caller: Some(StatelessCaller::unaskable()),
        stateless: true,
        capabilities,
        ..origin.clone()
    }
}

/// Whether calls of the catalog's tool `entry` run as tasks (see [`Gateway::task_support`]).
pub(in crate::gateway) fn task_support_of(entry: &Entry<Tool>) -> TaskSupport {
    entry
        .overrides
        .iter()
        .rev()
        .find_map(|rule| rule.task)
        .or(entry.upstream.config().task)
        .unwrap_or_default()
}

fn object_of(result: &impl serde::Serialize) -> JsonObject {
    match serde_json::to_value(result) {
        Ok(Value::Object(object)) => object,
        _ => JsonObject::new(),
    }
}
