//! Opening an upstream's connection: spawning its process (stdio) or connecting (streamable
//! HTTP, WebSocket, legacy SSE), wrapped in the notification tap, with the handshake still to
//! be awaited under the start deadline.

use std::sync::{Arc, atomic::Ordering};

use indexmap::IndexMap;

use super::{
    ChildProcess, Handshake, Upstream, UpstreamAuth,
    client::UpstreamClient,
    http::{self, Affinity},
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
        session: &Arc<Affinity>,
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
        session: Arc<Affinity>,
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
                let transport = match websocket::connect(&name, &url, &headers, max_bytes).await {
                    Ok(transport) => transport,
                    Err(error) => return Err(refused(oauth.as_deref(), token, error).await),
                };
                let transport = NotificationTap::new(transport, name, progress, callers);
                handshake(handler, transport, mode).await
            }),
            // The transport of the 2024-11-05 revision: only `initialize` can work over it.
            TransportKind::Sse => Box::pin(async move {
                let (headers, token) = with_token(headers, oauth.as_deref()).await;
                let transport = match sse::connect(&name, &url, &headers, max_bytes).await {
                    Ok(transport) => transport,
                    Err(error) => return Err(refused(oauth.as_deref(), token, error).await),
                };
                let transport = NotificationTap::new(transport, name, progress, callers);
                handshake(handler, transport, lifecycle(ProtocolMode::Legacy)).await
            }),
            TransportKind::StreamableHttp | TransportKind::Stdio => {
                let protocol = self.config.protocol;
                let open = move || {
                    let transport = http::open(
                        &name,
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

/// Why a WebSocket or SSE connection failed, with what an OAuth upstream's refusal said.
pub(crate) struct ConnectError {
    pub message: String,
    /// A 401's or 403's `WWW-Authenticate` challenge, and which of the two it was.
    pub challenge: Option<(u16, String)>,
}

impl ConnectError {
    /// The server answered the connection with `status`: with its challenge when that is a
    /// 401 or a 403.
    pub fn answered(message: String, status: u16, headers: &::http::HeaderMap) -> Self {
        let challenge = headers
            .get(::http::header::WWW_AUTHENTICATE)
            .and_then(|value| value.to_str().ok())
            .filter(|_| status == 401 || status == 403)
            .map(|value| (status, value.to_owned()));
        Self { message, challenge }
    }
}

impl From<String> for ConnectError {
    fn from(message: String) -> Self {
        Self {
            message,
            challenge: None,
        }
    }
}

/// A WebSocket or SSE connection that failed: an OAuth upstream's refusal is handled as on
/// streamable HTTP (a 401 gets one refresh, else the upstream needs a sign-in, which starts
/// from the challenge; a 403 `insufficient_scope` asks for a wider one). The next connection
/// goes with whatever token that leaves.
async fn refused(
    oauth: Option<&UpstreamAuth>,
    token: Option<String>,
    error: ConnectError,
) -> String {
    let Some(auth) = oauth else {
        return error.message;
    };
    match &error.challenge {
        Some((401, challenge)) => match auth.rejected(token.as_deref(), challenge).await {
            Some(_) => format!("{}; its token was refreshed", error.message),
            None => error.message,
        },
        Some((_, challenge)) if challenge.contains("insufficient_scope") => {
            auth.insufficient_scope(challenge)
        }
        _ => {
            if token.is_none() {
                auth.needs_first_sign_in();
            }
            error.message
        }
    }
}
