//! Tasks an upstream made itself (it serves the tasks extension), passed through: the client
//! gets the task under an id of the gateway's (an upstream's ids mean nothing beside
//! another's), and its `tasks/get`, `tasks/update` and `tasks/cancel` go to that upstream,
//! on the connection the caller's requests take, with the upstream's id.

use std::sync::Arc;

use rmcp::model::{
    CancelTaskParams, CancelTaskRequest, ClientRequest, CreateTaskResult, DetailedTask,
    GetTaskParams, GetTaskRequest, InputResponses, ServerResult, UpdateTaskParams,
    UpdateTaskRequest,
};
use serde_json::value::RawValue;

use super::{Tasks, new_id};
use crate::{
    error::GatewayError,
    gateway::{
        Gateway, Origin,
        forward::{send, unexpected},
    },
    registry,
    security::Identity,
    sync::lock,
};

/// A task an upstream runs, as the gateway knows it.
pub(super) struct Passed {
    upstream: Arc<str>,
    /// The upstream's id for it.
    id: String,
    owner: Option<String>,
    expires_ms: i64,
}

impl Tasks {
    /// `created`, the task `upstream` made for `owner`, under an id of the gateway's.
    pub(super) fn pass(
        &self,
        mut created: CreateTaskResult,
        upstream: &str,
        owner: Option<String>,
    ) -> CreateTaskResult {
        let now = registry::now_ms();
        let ttl = created
            .task
            .ttl_ms
            .map_or(self.config.ttl().as_millis() as i64, |ttl| ttl as i64);
        let id = new_id();
        let passed = Passed {
            upstream: Arc::from(upstream),
            id: std::mem::replace(&mut created.task.task_id, id.clone()),
            owner,
            expires_ms: now.saturating_add(ttl),
        };
        let mut all = lock(&self.passed);
        all.retain(|_, passed| passed.expires_ms > now);
        all.insert(id, passed);
        created
    }

    /// Whether task `id` of `owner`'s is one an upstream runs.
    pub(super) fn is_passed(&self, id: &str, owner: Option<&str>) -> bool {
        self.passed_of(id, owner).is_some()
    }

    /// The upstream and the upstream's id of task `id`, if it is a passed one of `owner`'s.
    fn passed_of(&self, id: &str, owner: Option<&str>) -> Option<(Arc<str>, String)> {
        let all = lock(&self.passed);
        let passed = all.get(id)?;
        (passed.owner.as_deref() == owner).then(|| (passed.upstream.clone(), passed.id.clone()))
    }
}

/// What a passed task's request does there.
pub(super) enum Ask {
    Get,
    Update(InputResponses),
    Cancel,
}

impl Gateway {
    /// A task `upstream` made of a call on the gateway's own way (the result's text), passed
    /// on under an id of the gateway's, as `call_tool_or_task` passes one on rmcp's way.
    pub(in crate::gateway) fn pass_raw_task(
        &self,
        raw: &RawValue,
        upstream: &str,
        origin: &Origin,
    ) -> Result<Box<RawValue>, serde_json::Error> {
        let created: CreateTaskResult = serde_json::from_str(raw.get())?;
        let owner = origin.principal.as_ref().map(Identity::key);
        serde_json::value::to_raw_value(&self.tasks.pass(created, upstream, owner))
    }

    /// Sends `ask` about task `id` to the upstream that made it, if it is a passed one;
    /// `None` when it is not.
    pub(super) async fn ask_passed(
        &self,
        id: &str,
        ask: Ask,
        owner: Option<&str>,
        origin: &Origin,
    ) -> Option<Result<Option<DetailedTask>, GatewayError>> {
        let (name, theirs) = self.tasks.passed_of(id, owner)?;
        Some(self.ask_upstream(id, &name, theirs, ask, origin).await)
    }

    async fn ask_upstream(
        &self,
        id: &str,
        name: &str,
        theirs: String,
        ask: Ask,
        origin: &Origin,
    ) -> Result<Option<DetailedTask>, GatewayError> {
        let upstream = self
            .upstream(name)
            .ok_or_else(|| GatewayError::UpstreamUnavailable {
                upstream: name.to_owned(),
                reason: "it is no longer configured".into(),
            })?;
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        let request = match ask {
            Ask::Get => {
                ClientRequest::GetTaskRequest(GetTaskRequest::new(GetTaskParams::new(theirs)))
            }
            Ask::Update(responses) => ClientRequest::UpdateTaskRequest(UpdateTaskRequest::new(
                UpdateTaskParams::new(theirs, responses),
            )),
            Ask::Cancel => ClientRequest::CancelTaskRequest(CancelTaskRequest::new(
                CancelTaskParams::new(theirs),
            )),
        };
        let getting = matches!(request, ClientRequest::GetTaskRequest(_));
        match send(&upstream, &peer, request, origin).await? {
            ServerResult::GetTaskResult(mut result) if getting => {
                result.task.task.task_id = id.to_owned();
                Ok(Some(result.task))
            }
            other if getting => Err(unexpected(&upstream, &other)),
            _ => Ok(None),
        }
    }
}
