//! The diagnostic hooks of the `server-stateless` scenario (SEP-2575): a tool that needs a
//! capability the client may not have declared, one that asks for input on a 2026-07-28
//! request, one that logs only when the request asked for logs, and three that change the
//! tool and prompt lists and the watched resource, so that `subscriptions/listen` streams and
//! subscribed sessions have something to announce.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        CallToolResponse, ClientCapabilities, InputRequiredResult, LoggingMessageNotificationParam,
        ResourceUpdatedNotificationParam, SamplingCapability,
    },
    service::RequestContext,
};
use serde_json::json;
use tokio::sync::watch;

use super::{complete, model};

pub const TOOLS: &[&str] = &[
    "test_missing_capability",
    "test_streaming_elicitation",
    "test_logging_tool",
    "test_trigger_tool_change",
    "test_trigger_prompt_change",
    "test_trigger_resource_change",
    "test_trigger_resource_update",
];

/// The resource whose updates `test_trigger_resource_update` announces.
pub const WATCHED: &str = "test://watched-resource";

/// Counters that `subscriptions/listen` streams watch. A change adds an item (a tool
/// `test_added_tool_N`, a prompt `test_added_prompt_N`, a resource `test://added/N`), so that
/// the list really differs.
#[derive(Clone)]
pub struct ListChanges {
    pub tools: watch::Sender<u64>,
    pub prompts: watch::Sender<u64>,
    pub resources: watch::Sender<u64>,
    pub watched_updates: watch::Sender<u64>,
    pub sessions: Sessions,
}

/// The session-era sessions open, each told of every change, as the TypeScript and Python
/// fixtures tell theirs (rmcp tells only the session it is asked in): each session's peer,
/// and whether it subscribed to [`WATCHED`].
#[derive(Clone, Default)]
pub struct Sessions(Arc<Mutex<Vec<Session>>>);

/// A session's peer, and whether it subscribed to [`WATCHED`].
type Session = (Peer<RoleServer>, Arc<AtomicBool>);

impl Sessions {
    pub fn add(&self, peer: Peer<RoleServer>, watching: Arc<AtomicBool>) {
        self.0.lock().unwrap().push((peer, watching));
    }

    /// The sessions still open (those that closed are forgotten) that want `change`.
    fn told_of(&self, change: Change) -> Vec<Peer<RoleServer>> {
        let mut sessions = self.0.lock().unwrap();
        sessions.retain(|(peer, _)| !peer.is_transport_closed());
        sessions
            .iter()
            .filter(|(_, watching)| change != Change::Watched || watching.load(Ordering::Relaxed))
            .map(|(peer, _)| peer.clone())
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Tools,
    Prompts,
    Resources,
    Watched,
}

/// Tells the sessions of `change` (a 2026-07-28 request: its own client).
async fn announce(
    changes: &ListChanges,
    context: &RequestContext<RoleServer>,
    stateless: bool,
    change: Change,
) {
    let peers = if stateless {
        vec![context.peer.clone()]
    } else {
        changes.sessions.told_of(change)
    };
    for peer in peers {
        let _ = match change {
            Change::Tools => peer.notify_tool_list_changed().await,
            Change::Prompts => peer.notify_prompt_list_changed().await,
            Change::Resources => peer.notify_resource_list_changed().await,
            Change::Watched => {
                peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(WATCHED))
                    .await
            }
        };
    }
}

impl ListChanges {
    pub fn new() -> Self {
        Self {
            tools: watch::channel(0).0,
            prompts: watch::channel(0).0,
            resources: watch::channel(0).0,
            watched_updates: watch::channel(0).0,
            sessions: Sessions::default(),
        }
    }

    /// The names of the tools the changes so far have added.
    pub fn added_tools(&self) -> Vec<String> {
        (1..=*self.tools.borrow())
            .map(|n| format!("test_added_tool_{n}"))
            .collect()
    }

    /// The names of the prompts the changes so far have added.
    pub fn added_prompts(&self) -> Vec<String> {
        (1..=*self.prompts.borrow())
            .map(|n| format!("test_added_prompt_{n}"))
            .collect()
    }

    /// The URIs of the resources the changes so far have added.
    pub fn added_resources(&self) -> Vec<String> {
        (1..=*self.resources.borrow())
            .map(|n| format!("test://added/{n}"))
            .collect()
    }
}

fn done(text: &str) -> CallToolResponse {
    CallToolResponse::Complete(complete(
        json!({"content": [{"type": "text", "text": text}]}),
    ))
}

/// Runs one of [`TOOLS`], or `None` for any other tool.
pub async fn call(
    name: &str,
    changes: &ListChanges,
    context: &RequestContext<RoleServer>,
) -> Result<Option<CallToolResponse>, ErrorData> {
    let capabilities = context.meta.client_capabilities();
    let stateless = capabilities.is_some();
    Ok(Some(match name {
        "test_missing_capability" => {
            // It samples, which a client that did not declare `sampling` cannot do.
            let declared = capabilities.as_ref().is_some_and(|c| c.sampling.is_some())
                || context
                    .peer
                    .peer_info()
                    .is_some_and(|info| info.capabilities.sampling.is_some());
            if !declared {
                let mut required = ClientCapabilities::default();
                required.sampling = Some(SamplingCapability::default());
                return Err(ErrorData::missing_required_client_capability(required));
            }
            done("sampling is available")
        }
        "test_streaming_elicitation" if stateless => {
            CallToolResponse::InputRequired(InputRequiredResult::new(
                Some(model(
                    json!({"answer": {"method": "elicitation/create", "params": {
                    "message": "Anything to add?",
                    "requestedSchema": {"type": "object", "properties": {"note": {"type": "string"}}}}}}),
                )),
                None,
            ))
        }
        "test_streaming_elicitation" => done("no input needed on a session"),
        "test_logging_tool" => {
            // A 2026-07-28 request gets log messages only if it asked for them.
            if !stateless || context.meta.log_level().is_some() {
                let params: LoggingMessageNotificationParam = model(
                    json!({"level": "info", "logger": "conformance-fixture", "data": "logging tool ran"}),
                );
                let _ = context.peer.notify_logging_message(params).await;
            }
            done("logged")
        }
        "test_trigger_tool_change" => {
            changes.tools.send_modify(|count| *count += 1);
            announce(changes, context, stateless, Change::Tools).await;
            done("tool list changed")
        }
        "test_trigger_resource_change" => {
            changes.resources.send_modify(|count| *count += 1);
            announce(changes, context, stateless, Change::Resources).await;
            done("resource list changed")
        }
        "test_trigger_resource_update" => {
            changes.watched_updates.send_modify(|count| *count += 1);
            announce(changes, context, stateless, Change::Watched).await;
            done("resource updated")
        }
        "test_trigger_prompt_change" => {
            changes.prompts.send_modify(|count| *count += 1);
            announce(changes, context, stateless, Change::Prompts).await;
            done("prompt list changed")
        }
        _ => return Ok(None),
    }))
}
