//! One upstream entry. Its shape is a superset of a Claude Desktop `mcpServers` entry
//! (`command`, `args`, `env`; `url` + `headers`; VS Code's `type`), so existing configs paste in.

use std::{path::PathBuf, time::Duration};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::{OAuthConfig, TaskSupport, ToolOverride};

/// An upstream MCP server: a command to spawn (stdio) or a URL to connect to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Program to spawn for a stdio upstream (looked up on `PATH` unless it contains a `/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment for the child; the gateway's own environment is inherited.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub env: IndexMap<String, String>,
    /// Working directory of the child, relative to the config file's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cwd: Option<PathBuf>,
    /// Endpoint of a remote upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers sent with every request to `url` (e.g. `Authorization`). Never logged.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// How to reach the upstream; inferred from `command`/`url` when absent.
    #[serde(default, alias = "type", skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportKind>,
    /// Prepended to every tool and prompt name; default `"<name>__"`, `""` passes names through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Keep the entry but do not start it.
    #[serde(default)]
    pub disabled: bool,
    /// Which protocol era to open with.
    #[serde(default)]
    pub protocol: ProtocolMode,
    /// Whether clients share one connection to this upstream or each session gets its own.
    #[serde(default)]
    pub isolation: Isolation,
    /// Overrides `timeouts.startup_secs` for this upstream (slow installers such as `npx`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup_timeout_secs: Option<f64>,
    /// Overrides `timeouts.call_secs` for this upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_timeout_secs: Option<f64>,
    /// Per-tool overrides of the call deadline, by the tool's name on this upstream (before
    /// any prefix): a slow report generator beside quick lookups.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tool_timeouts: IndexMap<String, f64>,
    /// Overrides `limits.max_concurrent_calls` for this upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_calls: Option<usize>,
    /// Refuse a tool whose definition changes after the gateway first saw it (the change is
    /// logged either way).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pin: bool,
    /// Sign in to this upstream with OAuth (`url` upstreams): see [`OAuthConfig`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthConfig>,
    /// How its tools are offered and called, by the tool's own name: see [`ToolOverride`].
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub tools: IndexMap<String, ToolOverride>,
    /// Whether its tools' calls run as tasks, unless a tool's override says otherwise
    /// (see [`TaskSupport`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskSupport>,
}

/// The wire an upstream speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TransportKind {
    Stdio,
    #[serde(alias = "http", alias = "streamableHttp")]
    StreamableHttp,
    Sse,
    #[serde(alias = "ws")]
    Websocket,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::StreamableHttp => "streamable-http",
            Self::Sse => "sse",
            Self::Websocket => "websocket",
        }
    }
}

/// How the gateway opens an upstream connection.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolMode {
    /// Remote: try `server/discover` (2026-07-28) and fall back to `initialize` when the server
    /// is older. Stdio: `initialize` first (one process serves one era), `server/discover`
    /// when the server refuses it.
    #[default]
    Auto,
    /// Always use the `initialize` handshake (protocol up to 2025-11-25).
    Legacy,
    /// Require the stateless 2026-07-28 revision.
    Modern,
}

/// Who shares a connection to an upstream.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// One connection for every client: cheapest, and right for stateless servers.
    #[default]
    Shared,
    /// A connection (for stdio, a process) of its own for each session-era client session,
    /// opened at its first call and closed with the session: for stateful servers (browser
    /// automation, shells), and so a server's requests to the client always have one
    /// client to go to. 2026-07-28 clients have no session and use the shared connection.
    PerSession,
}

impl UpstreamConfig {
    /// The transport, explicit or inferred: a command means stdio; a `ws://` URL WebSocket;
    /// a URL whose path ends in `/sse` legacy SSE; any other URL streamable HTTP.
    pub fn transport_kind(&self) -> TransportKind {
        if let Some(kind) = self.transport {
            return kind;
        }
        match &self.url {
            None => TransportKind::Stdio,
            Some(url) if url.starts_with("ws://") || url.starts_with("wss://") => {
                TransportKind::Websocket
            }
            Some(url) if url.split('?').next().unwrap_or("").ends_with("/sse") => {
                TransportKind::Sse
            }
            Some(_) => TransportKind::StreamableHttp,
        }
    }

    /// The literal text put in front of this upstream's tool names.
    pub fn exposed_prefix(&self, name: &str) -> String {
        self.prefix.clone().unwrap_or_else(|| format!("{name}__"))
    }

    pub fn startup_timeout(&self, default: Duration) -> Duration {
        self.startup_timeout_secs
            .map_or(default, Duration::from_secs_f64)
    }

    pub fn call_timeout(&self, default: Duration) -> Duration {
        self.call_timeout_secs
            .map_or(default, Duration::from_secs_f64)
    }

    /// The deadline of a call to `tool`: its own override, else the upstream's.
    pub fn tool_timeout(&self, tool: &str, upstream_default: Duration) -> Duration {
        self.tool_timeouts
            .get(tool)
            .map_or(upstream_default, |secs| Duration::from_secs_f64(*secs))
    }
}
