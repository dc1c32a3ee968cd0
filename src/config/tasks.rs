//! Tasks (the MCP tasks extension, SEP-2663): which tool calls the gateway runs as tasks
//! (`task:` on an upstream or a tool's override), and `tasks:`, how it runs them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a tool's calls may, or must, run as tasks (the words of the 2025-11-25
/// `execution.taskSupport`). The gateway runs the task whatever the upstream knows of tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskSupport {
    /// Never a task: the call's answer is the answer.
    #[default]
    Forbidden,
    /// A task for a client that takes tasks, unless it answers within `tasks.inline_ms`.
    Optional,
    /// Always a task, once past its first input rounds; a client that does not take tasks
    /// is refused (-32021).
    Required,
}

/// How the gateway runs tasks.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TasksConfig {
    /// How long a task is kept from its creation (its `ttlMs`): `tasks/get` finds it until
    /// then, wherever it ran.
    pub ttl_secs: u64,
    /// How often clients are told to poll (`pollIntervalMs`).
    pub poll_interval_ms: u64,
    /// A call's first answer that comes within this time is given at once: an `optional`
    /// tool's result, or an input round (`input_required`) asked before any work is done.
    /// Past it, the call is a task.
    pub inline_ms: u64,
}

impl Default for TasksConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 3600,
            poll_interval_ms: 1000,
            inline_ms: 500,
        }
    }
}

impl TasksConfig {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs)
    }

    pub fn inline(&self) -> Duration {
        Duration::from_millis(self.inline_ms)
    }
}
