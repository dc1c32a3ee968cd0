//! Tool calls run as tasks (the MCP tasks extension, SEP-2663) for clients that declare it,
//! whatever the upstream knows of tasks: `task: optional | required` on an upstream or a
//! tool's override says which calls (see `tasks/run.rs` for how one runs).
//!
//! A task is the gateway's: its status, and its result or error once it ends, are kept here
//! while it runs and in the registry at each change, so `tasks/get` answers after the client
//! went away, on another gateway of the registry, and after this one restarted. A task the
//! gateway was running when it stopped is reported `failed`, not lost: its lease in the
//! registry lapses. `tasks/update` and `tasks/cancel` reach the gateway running the task.
//! A task is its principal's alone: another caller is told no such task exists.

mod passed;
mod run;

use passed::Ask;

pub(super) use run::task_support_of;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use rmcp::{
    ErrorData,
    model::{CreateTaskResult, DetailedTask, InputResponses, JsonObject, Task, TaskPayload},
    task_manager::current_timestamp,
};
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::TasksConfig,
    error::GatewayError,
    registry::{self, Registry, StoredTask, this_gateway},
    sync::lock,
};

/// How often a gateway renews the lease of the tasks it runs.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A task whose lease was not renewed for this long is reported failed.
const LEASE: Duration = Duration::from_secs(45);
/// What a task left running by a gateway that stopped failed with.
const ABANDONED: &str = "the gateway running the task stopped before it ended";

/// The tasks this gateway runs, and the registry that keeps every gateway's.
pub(super) struct Tasks {
    live: Mutex<HashMap<String, Arc<Running>>>,
    /// Tasks upstreams made themselves, by the gateway's id for them (see `passed`).
    passed: Mutex<HashMap<String, passed::Passed>>,
    registry: OnceLock<Registry>,
    config: TasksConfig,
}

/// One task this gateway runs.
pub(super) struct Running {
    id: String,
    /// Its principal (`Identity::key`); `None` without `auth`.
    owner: Option<String>,
    created_at: String,
    created_ms: i64,
    expires_ms: i64,
    /// Stops its call: `tasks/cancel`, or the gateway stopping.
    cancel: CancellationToken,
    state: Mutex<State>,
    /// Told when input responses arrive.
    answered: Notify,
}

struct State {
    payload: TaskPayload,
    updated_at: String,
    updated_ms: i64,
    /// The answers to the input requests still pending, as they come.
    answers: InputResponses,
}

impl Tasks {
    pub(super) fn new(config: &TasksConfig) -> Self {
        Self {
            live: Mutex::default(),
            passed: Mutex::default(),
            registry: OnceLock::new(),
            config: config.clone(),
        }
    }

    /// Keeps tasks in `registry` from now on: reports failed those left running by a gateway
    /// that stopped (at once when the registry is this gateway's `alone`: they are its last
    /// run's), and renews the lease of this one's until `shutdown`.
    pub(super) fn keep_in(
        &self,
        registry: Registry,
        alone: bool,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        if self.registry.set(registry.clone()).is_err() {
            return;
        }
        tracker.spawn(async move {
            let mut every = tokio::time::interval(RENEW_EVERY);
            let mut first = alone;
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let now = registry::now_ms();
                let lease = if std::mem::take(&mut first) {
                    0
                } else {
                    LEASE.as_millis() as i64
                };
                let lapsed = now - lease;
                let abandoned = failed_detail(&ErrorData::internal_error(ABANDONED, None));
                let kept = async {
                    registry.renew_tasks(this_gateway(), now).await?;
                    registry
                        .fail_abandoned_tasks(lapsed, &abandoned, now)
                        .await?;
                    registry.forget_expired_tasks(now).await
                };
                if let Err(error) = kept.await {
                    tracing::warn!(%error, "cannot keep the tasks' leases in the registry");
                }
            }
        });
    }

    /// A new task of `owner`'s, not yet found by `tasks/get` (see [`Tasks::publish`]).
    fn open(&self, owner: Option<String>) -> Arc<Running> {
        let now = registry::now_ms();
        lock(&self.live).retain(|_, task| task.expires_ms > now);
        let created_at = current_timestamp();
        Arc::new(Running {
            id: new_id(),
            owner,
            created_at: created_at.clone(),
            created_ms: now,
            expires_ms: now.saturating_add(self.config.ttl().as_millis() as i64),
            cancel: CancellationToken::new(),
            state: Mutex::new(State {
                payload: TaskPayload::Working,
                updated_at: created_at,
                updated_ms: now,
                answers: InputResponses::new(),
            }),
            answered: Notify::new(),
        })
    }

    /// Makes `task` found by `tasks/get`, here and in the registry, before its creation is
    /// answered (the SEP: a task is durably created before `CreateTaskResult` is sent).
    async fn publish(&self, task: &Arc<Running>) {
        lock(&self.live).insert(task.id.clone(), task.clone());
        self.record(task).await;
    }

    /// Moves `task` to `payload`, and writes it, unless it has ended.
    async fn end(&self, task: &Running, payload: TaskPayload) {
        if task.set(payload) {
            self.record(task).await;
        }
    }

    /// Writes `task` as it is now to the registry.
    async fn record(&self, task: &Running) {
        let Some(registry) = self.registry.get() else {
            return;
        };
        if let Err(error) = registry.keep_task(&task.stored()).await {
            tracing::warn!(task = %task.id, %error, "cannot keep a task in the registry");
        }
    }

    /// The answer that creates `task`.
    fn created(&self, task: &Running) -> CreateTaskResult {
        CreateTaskResult::new(task.task(&self.config))
    }

    /// `tasks/get`: task `id` of `owner`'s.
    pub(super) async fn get(
        &self,
        id: &str,
        owner: Option<&str>,
    ) -> Result<DetailedTask, GatewayError> {
        if let Some(task) = self.running(id, owner) {
            return Ok(task.detailed(&self.config));
        }
        let stored = self.stored(id, owner).await?;
        Ok(detailed_of(&stored, &self.config))
    }

    /// `tasks/update`: answers to the input requests of task `id` of `owner`'s. Answers to
    /// requests that are not pending are ignored, as the SEP asks.
    pub(super) async fn update(
        &self,
        id: &str,
        owner: Option<&str>,
        responses: InputResponses,
    ) -> Result<(), GatewayError> {
        if let Some(task) = self.running(id, owner) {
            if task.answer(responses) {
                self.record(&task).await;
            }
            return Ok(());
        }
        self.elsewhere(id, owner, "tasks/update").await
    }

    /// `tasks/cancel`: stops task `id` of `owner`'s; a task that has ended stays as it ended.
    pub(super) async fn cancel(&self, id: &str, owner: Option<&str>) -> Result<(), GatewayError> {
        if let Some(task) = self.running(id, owner) {
            task.cancel.cancel();
            return Ok(());
        }
        self.elsewhere(id, owner, "tasks/cancel").await
    }

    /// `method` for task `id` of `owner`'s that this gateway does not run: nothing to do once
    /// it has ended; while it runs, only the gateway running it can.
    async fn elsewhere(
        &self,
        id: &str,
        owner: Option<&str>,
        method: &str,
    ) -> Result<(), GatewayError> {
        let stored = self.stored(id, owner).await?;
        if is_terminal(&stored.status) {
            return Ok(());
        }
        Err(GatewayError::Internal {
            reason: format!(
                "task {id} runs on another gateway of this registry: send its {method} there"
            ),
        })
    }

    fn running(&self, id: &str, owner: Option<&str>) -> Option<Arc<Running>> {
        let task = lock(&self.live).get(id).cloned()?;
        (task.owner.as_deref() == owner && task.expires_ms > registry::now_ms()).then_some(task)
    }

    async fn stored(&self, id: &str, owner: Option<&str>) -> Result<StoredTask, GatewayError> {
        let unknown = || GatewayError::UnknownTask { id: id.to_owned() };
        let registry = self.registry.get().ok_or_else(unknown)?;
        let stored = registry
            .task(id, registry::now_ms())
            .await
            .map_err(|error| GatewayError::Internal {
                reason: format!("cannot read task {id}: {error}"),
            })?
            .ok_or_else(unknown)?;
        if stored.owner.as_deref() != owner {
            return Err(unknown());
        }
        Ok(stored)
    }
}

impl super::Gateway {
    /// Keeps tasks in `registry` from now on (see [`Tasks::keep_in`]).
    pub fn keep_tasks(
        &self,
        registry: Registry,
        alone: bool,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) {
        self.tasks.keep_in(registry, alone, tracker, shutdown);
    }

    /// `tasks/get` of `origin`'s principal.
    pub async fn get_task(
        &self,
        id: &str,
        origin: &super::Origin,
    ) -> Result<DetailedTask, GatewayError> {
        let owner = owner_of(origin);
        match self
            .ask_passed(id, Ask::Get, owner.as_deref(), origin)
            .await
        {
            Some(Ok(Some(task))) => Ok(task),
            Some(Ok(None)) => Err(GatewayError::UnknownTask { id: id.to_owned() }),
            Some(Err(error)) => Err(error),
            None => self.tasks.get(id, owner.as_deref()).await,
        }
    }

    /// `tasks/update` of `origin`'s principal.
    pub async fn update_task(
        &self,
        id: &str,
        responses: InputResponses,
        origin: &super::Origin,
    ) -> Result<(), GatewayError> {
        let owner = owner_of(origin);
        if !self.tasks.is_passed(id, owner.as_deref()) {
            return self.tasks.update(id, owner.as_deref(), responses).await;
        }
        let ask = Ask::Update(responses);
        let answer = self.ask_passed(id, ask, owner.as_deref(), origin).await;
        answer.map_or(Ok(()), |answer| answer.map(drop))
    }

    /// `tasks/cancel` of `origin`'s principal.
    pub async fn cancel_task(&self, id: &str, origin: &super::Origin) -> Result<(), GatewayError> {
        let owner = owner_of(origin);
        match self
            .ask_passed(id, Ask::Cancel, owner.as_deref(), origin)
            .await
        {
            Some(answer) => answer.map(drop),
            None => self.tasks.cancel(id, owner.as_deref()).await,
        }
    }
}

fn owner_of(origin: &super::Origin) -> Option<String> {
    origin
        .principal
        .as_ref()
        .map(crate::security::Identity::key)
}

impl Running {
    fn task(&self, config: &TasksConfig) -> Task {
        let state = lock(&self.state);
        let mut task = Task::new(
            self.id.clone(),
            state.payload.status(),
            self.created_at.clone(),
            state.updated_at.clone(),
        )
        .with_ttl_ms(config.ttl().as_millis() as u64)
        .with_poll_interval_ms(config.poll_interval_ms);
        if let TaskPayload::Failed { error } = &state.payload
            && let Some(message) = error.get("message").and_then(Value::as_str)
        {
            task = task.with_status_message(message);
        }
        task
    }

    fn detailed(&self, config: &TasksConfig) -> DetailedTask {
        let payload = lock(&self.state).payload.clone();
        DetailedTask::new(self.task(config), payload)
    }

    /// Moves it to `payload`, unless it has ended.
    fn set(&self, payload: TaskPayload) -> bool {
        let mut state = lock(&self.state);
        if state.payload.status().is_terminal() {
            return false;
        }
        state.payload = payload;
        state.updated_at = current_timestamp();
        state.updated_ms = registry::now_ms();
        true
    }

    /// Takes the answers among `responses` to requests still pending; back to `working`
    /// once none is. Whether anything changed.
    fn answer(&self, responses: InputResponses) -> bool {
        let mut state = lock(&self.state);
        let State {
            payload, answers, ..
        } = &mut *state;
        let TaskPayload::InputRequired { input_requests } = payload else {
            return false;
        };
        let mut taken = false;
        for (key, response) in responses {
            if input_requests.remove(&key).is_some() {
                answers.insert(key, response);
                taken = true;
            }
        }
        if taken && input_requests.is_empty() {
            *payload = TaskPayload::Working;
        }
        if taken {
            state.updated_at = current_timestamp();
            state.updated_ms = registry::now_ms();
            self.answered.notify_waiters();
        }
        taken
    }

    /// The answers given, once every request is answered.
    fn answers_when_done(&self) -> Option<InputResponses> {
        let mut state = lock(&self.state);
        match state.payload {
            TaskPayload::InputRequired { .. } => None,
            _ => Some(std::mem::take(&mut state.answers)),
        }
    }

    fn stored(&self) -> StoredTask {
        let state = lock(&self.state);
        let (status, detail) = match &state.payload {
            TaskPayload::Working => ("working", None),
            TaskPayload::InputRequired { input_requests } => {
                ("input_required", serde_json::to_string(input_requests).ok())
            }
            TaskPayload::Completed { result } => ("completed", serde_json::to_string(result).ok()),
            TaskPayload::Failed { error } => ("failed", serde_json::to_string(error).ok()),
            TaskPayload::Cancelled => ("cancelled", None),
            _ => ("working", None),
        };
        StoredTask {
            id: self.id.clone(),
            owner: self.owner.clone(),
            holder: this_gateway().to_owned(),
            held_at: state.updated_ms,
            status: status.to_owned(),
            detail,
            created_at: self.created_ms,
            updated_at: state.updated_ms,
            expires_at: self.expires_ms,
        }
    }
}

/// A task as the registry keeps it, as `tasks/get` answers it; one still running whose
/// gateway stopped renewing its lease has failed.
fn detailed_of(stored: &StoredTask, config: &TasksConfig) -> DetailedTask {
    let detail = || -> JsonObject {
        stored
            .detail
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default()
    };
    let abandoned = !is_terminal(&stored.status)
        && stored.held_at < registry::now_ms() - LEASE.as_millis() as i64;
    let payload = match stored.status.as_str() {
        _ if abandoned => TaskPayload::Failed {
            error: error_object(&ErrorData::internal_error(ABANDONED, None)),
        },
        "input_required" => match stored
            .detail
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
        {
            Some(input_requests) => TaskPayload::InputRequired { input_requests },
            None => TaskPayload::Working,
        },
        "completed" => TaskPayload::Completed { result: detail() },
        "failed" => TaskPayload::Failed { error: detail() },
        "cancelled" => TaskPayload::Cancelled,
        _ => TaskPayload::Working,
    };
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339()
    };
    let task = Task::new(
        stored.id.clone(),
        payload.status(),
        at(stored.created_at),
        at(stored.updated_at),
    )
    .with_ttl_ms(config.ttl().as_millis() as u64)
    .with_poll_interval_ms(config.poll_interval_ms);
    DetailedTask::new(task, payload)
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// A JSON-RPC error as a failed task carries it.
fn error_object(error: &ErrorData) -> JsonObject {
    match serde_json::to_value(error) {
        Ok(Value::Object(object)) => object,
        _ => JsonObject::new(),
    }
}

fn failed_detail(error: &ErrorData) -> String {
    Value::Object(error_object(error)).to_string()
}

/// A task id no one can guess: 128 random bits.
fn new_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
