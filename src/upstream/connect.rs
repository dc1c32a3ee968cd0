//! Opening an upstream's connection: spawning its process (stdio) or connecting (streamable
//! HTTP, WebSocket, legacy SSE), wrapped in the notification tap, with the handshake still to
//! be awaited under the start deadline.

use std::sync::{Arc, atomic::Ordering};

use indexmap::IndexMap;

use super::{
    ChildProcess, Handshake, Upstream, UpstreamAuth,
    client::UpstreamClient,
    http::{self, SessionId},
    offer::{handshake, handshake_tolerant, lifecycle, refused_initialize},
    process::CommandSpec,
    sse, stdio,
    tap::NotificationTap,
    websocket,
};
use crate::config::{ProtocolMode, TransportKind};

impl Upstream {
    /// Spawns or connects, returning the child (if any) and the handshake still to await.
    pub(super) fn open(
        &self,
        handler: UpstreamClient,
        session: &Arc<SessionId>,
    ) -> Result<(Option<ChildProcess>, Handshake), String> {
        if let Some(url) = &self.config.url {
            return Ok((None, self.connect(url.clone(), handler, session.clone())?));
        }
        let Some(program) = &self.config.command else {
            return Err("neither `command` nor `url` is set".into());
        };
        let env: Vec<(String, String)> = self
            .config
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let spec = CommandSpec {
            program,
            args: &self.config.args,
            env: &env,
            cwd: self.config.cwd.as_deref(),
            base_dir: &self.settings.base_dir,
        };
        let connection = stdio::open(
            &self.name,
            &spec,
            self.settings.max_line_bytes,
            self.settings.stderr_line_bytes,
            self.stderr_tail.clone(),
            self.closed_because.clone(),
        )
        .map_err(|error| error.to_string())?;
        let child = ChildProcess {
            group: connection.group,
            stderr_pump: connection.stderr_pump,
            lane: connection.transport.lane(),
        };
        let transport = NotificationTap::new(
            connection.transport,
            self.name.clone(),
            self.progress.clone(),
            self.callers.clone(),
        );
        Ok((
            Some(child),
            Box::pin(handshake(
                handler,
                transport,
                lifecycle(self.stdio_protocol()),
            )),
        ))
    }

    /// How a stdio upstream is opened. Under `auto`, in the session era first: one process
    /// serves one era, and a server that speaks both (the TypeScript SDK v2, the Python SDK,
    /// rmcp) sends a tool's sampling or elicitation request only on a session, which the
    /// gateway also carries to 2026-07-28 clients as `input_required`; the other way round,
    /// session-era clients would lose them. A server that refuses `initialize` speaks
    /// 2026-07-28 alone and is opened again with `server/discover` (see `Upstream::run`).
    /// Remote upstreams keep `server/discover` first: a second, session-era connection to
    /// them costs no process (`twin`).
    fn stdio_protocol(&self) -> ProtocolMode {
        match self.config.protocol {
            ProtocolMode::Auto if self.refused_initialize.load(Ordering::Relaxed) => {
                ProtocolMode::Modern
            }
            ProtocolMode::Auto => ProtocolMode::Legacy,
            mode => mode,
        }
    }

    /// Whether a stdio upstream under `auto` refused `initialize` for the first time: it is
    /// marked to be opened with `server/discover`, at once.
    pub(super) fn opens_again_with_discover(&self, reason: &str) -> bool {
        let first_refusal = self.config.protocol == ProtocolMode::Auto
            && self.config.url.is_none()
            && refused_initialize(reason)
            && !self.refused_initialize.swap(true, Ordering::Relaxed);
        if first_refusal {
            tracing::info!(upstream = %self.name, "it refused initialize: opening it with server/discover");
        }
        first_refusal
    }

    /// The handshake over a remote transport, which connects first where it must; a
    /// streamable HTTP session it opens is noted in `session`.
    fn connect(
        &self,
        url: String,
        handler: UpstreamClient,
        session: Arc<SessionId>,
    ) -> Result<Handshake, String> {
        let headers = self.config.headers.clone();
        let max_bytes = self.settings.max_response_bytes;
        let progress = self.progress.clone();
        let callers = self.callers.clone();
        let name: Arc<str> = self.name.clone();
        let mode = lifecycle(self.config.protocol);
        let oauth = self.oauth.clone();
        Ok(match self.config.transport_kind() {
            TransportKind::Websocket => Box::pin(async move {
                let (headers, token) = with_token(headers, oauth.as_deref()).await;
                let transport = websocket::connect(&url, &headers, max_bytes)
                    .await
                    .map_err(|error| refused(oauth.as_deref(), token, error))?;
                let transport = NotificationTap::new(transport, name, progress, callers);
                handshake(handler, transport, mode).await
            }),
            // The transport of the 2024-11-05 revision: only `initialize` can work over it.
            TransportKind::Sse => Box::pin(async move {
                let (headers, token) = with_token(headers, oauth.as_deref()).await;
                let transport = sse::connect(&url, &headers, max_bytes)
                    .await
                    .map_err(|error| refused(oauth.as_deref(), token, error))?;
                let transport = NotificationTap::new(transport, name, progress, callers);
                handshake(handler, transport, lifecycle(ProtocolMode::Legacy)).await
            }),
            TransportKind::StreamableHttp | TransportKind::Stdio => {
                let protocol = self.config.protocol;
                let open = move || {
                    let transport = http::open(
                        &url,
                        &headers,
                        max_bytes,
                        callers.clone(),
                        session.clone(),
                        oauth.clone(),
                    )?;
                    Ok(NotificationTap::new(
                        transport,
                        name.clone(),
                        progress.clone(),
                        callers.clone(),
                    ))
                };
                Box::pin(handshake_tolerant(handler, open, protocol))
            }
        })
    }
}

/// The configured headers, with the access token of an OAuth upstream when it has one.
async fn with_token(
    mut headers: IndexMap<String, String>,
    oauth: Option<&UpstreamAuth>,
) -> (IndexMap<String, String>, Option<String>) {
    let token = match oauth {
        Some(auth) => auth.bearer().await,
        None => None,
    };
    if let Some(token) = &token {
        headers.insert("Authorization".into(), format!("Bearer {token}"));
    }
    (headers, token)
}

/// A WebSocket or SSE connection that failed: for an OAuth upstream that had no token yet, a
/// sign-in is what it needs (these transports do not hand back the 401's challenge; the
/// sign-in discovers from the upstream's well-known metadata instead).
fn refused(oauth: Option<&UpstreamAuth>, token: Option<String>, error: String) -> String {
    if let Some(auth) = oauth
        && token.is_none()
    {
        auth.needs_first_sign_in();
    }
    error
}
