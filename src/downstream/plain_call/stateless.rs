//! A 2026-07-28 client's plain `tools/call` on a door's own way: what its `_meta` says of the
//! client (the revision, its name, what it can do, its progress token and log level), read
//! when it asks for nothing more, and who asks, for the router. Its progress and log messages
//! go on the call's own stream: the HTTP response (`http/fast.rs`), or the lines of `mcps
//! stdio` and the frames of a WebSocket (`message_calls.rs`).

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but 2026-07-28 clients may still ask for log messages"
)]

use std::{borrow::Cow, collections::BTreeMap, sync::Arc};

use futures::future::BoxFuture;
use rmcp::model::{
    ClientCapabilities, LoggingLevel, LoggingMessageNotification, LoggingMessageNotificationParam,
    ProgressToken, ProtocolVersion, ServerNotification,
};
use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{PROGRESS_TOKEN, caller::on_stream, progress_on};
use crate::{
    gateway::{Origin, RequestLog, StatelessCaller, View},
    security::{Identity, Lease},
};

/// The `_meta` keys every 2026-07-28 request carries.
const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The one more key of the protocol's this way reads: the level of the log messages the
/// client wants on the call's stream.
const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// What every key of the protocol's own in `_meta` begins with.
const PROTOCOL_KEYS: &str = "io.modelcontextprotocol/";

/// A request's `_meta`, its values kept as the client wrote them: they are read only where
/// needed, and the protocol's own keys, most of it, are not forwarded.
pub type RawMeta<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// The one member of `io.modelcontextprotocol/clientInfo` the call history keeps.
#[derive(Deserialize)]
struct ClientInfo<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// What a plain 2026-07-28 call's `_meta` says of its client.
pub struct Envelope {
    capabilities: ClientCapabilities,
    client: Option<Arc<str>>,
    progress: Option<ProgressToken>,
    log_level: Option<LoggingLevel>,
}

impl Envelope {
    /// Reads `meta` if it holds the keys every 2026-07-28 request carries, of the revision
    /// this way speaks, and no other key of the protocol's but a log level; a progress token,
    /// if any, is a string or an integer. `None` leaves the request to rmcp, which answers
    /// what is wrong with it.
    pub fn read(meta: &RawMeta<'_>) -> Option<Self> {
        let version = meta.get(PROTOCOL_VERSION)?;
        if serde_json::from_str::<Cow<'_, str>>(version.get()).ok()?
            != ProtocolVersion::V_2026_07_28.as_str()
        {
            return None;
        }
        let known = [
            PROTOCOL_VERSION,
            CLIENT_INFO,
            CLIENT_CAPABILITIES,
            LOG_LEVEL,
        ];
        if meta
            .keys()
            .any(|key| key.starts_with(PROTOCOL_KEYS) && !known.contains(&key.as_ref()))
        {
            return None;
        }
        let info = meta.get(CLIENT_INFO)?;
        if !info.get().starts_with('{') {
            return None;
        }
        let capabilities = meta.get(CLIENT_CAPABILITIES)?;
        if !capabilities.get().starts_with('{') {
            return None;
        }
        let read = |key| meta.get(key).map(|raw: &&RawValue| raw.get());
        Some(Self {
            capabilities: serde_json::from_str(capabilities.get()).ok()?,
            client: serde_json::from_str::<ClientInfo>(info.get())
                .ok()
                .map(|info| Arc::from(info.name)),
            progress: read(PROGRESS_TOKEN)
                .map(serde_json::from_str)
                .transpose()
                .ok()?,
            log_level: read(LOG_LEVEL).map(serde_json::from_str).transpose().ok()?,
        })
    }

    /// Whether the client takes tasks: a tool that may run as one runs as the gateway's task,
    /// on rmcp's way, and an upstream may answer with a task of its own, whose id the
    /// gateway's replaces (`gateway/tasks/passed.rs`).
    pub fn takes_tasks(&self) -> bool {
        self.capabilities.supports_tasks()
    }

    /// Whether the call may send messages before its answer: its progress, or log messages.
    pub fn streams(&self) -> bool {
        self.progress.is_some() || self.log_level.is_some()
    }

    /// Who asks, for the call: its progress and the log messages it asked for go to `events`
    /// (the call's own stream, which a call that [`Envelope::streams`] needs); `cancel` ends
    /// the call.
    pub fn origin(
        self,
        events: Option<&mpsc::Sender<String>>,
        cancel: CancellationToken,
        view: Option<Arc<View>>,
        principal: Option<Identity>,
        credential: Option<Lease>,
    ) -> Origin {
        let progress = self
            .progress
            .zip(events)
            .map(|(token, events)| progress_on(token, events));
        // A caller even for a call that wants no log messages, as on rmcp's way: while the
        // call is in flight, no other client is asked in its place.
        let caller = match self.log_level.zip(events) {
            Some((level, events)) => Arc::new(StatelessCaller::new(
                CallStream(events.clone()),
                Some(level),
            )) as _,
            None => StatelessCaller::unaskable(),
        };
        Origin {
            cancel,
            progress,
            caller: Some(caller),
            stateless: true,
            capabilities: Some(Arc::new(self.capabilities)),
            connections: None,
            log_level: self.log_level,
            client: self.client,
            principal,
            view,
            credential,
        }
    }
}

/// The members of `_meta` that go on to the upstream: all but the protocol's own, which
/// describe this hop (the router drops them on every way; here they are not even read).
/// `None` if one does not read as JSON (it was read as raw JSON already, so it does).
pub fn forwarded(meta: &RawMeta<'_>) -> Option<Map<String, Value>> {
    meta.iter()
        .filter(|(key, _)| !key.starts_with(PROTOCOL_KEYS))
        .map(|(key, raw)| Some((key.to_string(), serde_json::from_str(raw.get()).ok()?)))
        .collect()
}

/// Whether `meta` holds a key of the protocol's own.
pub fn has_protocol_keys(meta: &RawMeta<'_>) -> bool {
    meta.keys().any(|key| key.starts_with(PROTOCOL_KEYS))
}

/// A 2026-07-28 call's own stream, for its log messages: JSON-RPC messages' text.
struct CallStream(mpsc::Sender<String>);

impl RequestLog for CallStream {
    fn send(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        let events = self.0.clone();
        Box::pin(async move {
            let notification = ServerNotification::LoggingMessageNotification(
                LoggingMessageNotification::new(message),
            );
            // A stream that closed took the call with it: nobody waits for its messages.
            on_stream(&events, notification).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> RawMeta<'_> {
        serde_json::from_str(json).expect("meta read")
    }

    const PLAIN_META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
        "io.modelcontextprotocol/clientInfo":{"name":"inspector","version":"1"},
        "io.modelcontextprotocol/clientCapabilities":{}"#;

    #[test]
    fn a_plain_meta_is_read_without_its_protocol_keys_going_on() {
        let json = format!(
            r#"{PLAIN_META},"io.modelcontextprotocol/logLevel":"warning","progressToken":7,
               "trace":{{"id":[1,2]}},"note":"x"}}"#
        );
        let meta = meta(&json);
        let envelope = Envelope::read(&meta).expect("plain");
        assert_eq!(envelope.client.as_deref(), Some("inspector"));
        assert_eq!(envelope.log_level, Some(LoggingLevel::Warning));
        assert_eq!(
            envelope.progress,
            Some(ProgressToken(rmcp::model::NumberOrString::Number(7)))
        );
        assert!(envelope.streams());
        let forwarded = forwarded(&meta).expect("forwarded");
        assert_eq!(
            Value::Object(forwarded),
            serde_json::json!({"trace": {"id": [1, 2]}, "note": "x", "progressToken": 7})
        );
        let quiet = Envelope::read(&super::tests::meta(&format!("{PLAIN_META}}}"))).unwrap();
        assert!(!quiet.streams());
    }

    #[test]
    fn a_meta_asking_for_more_than_the_call_is_not_plain() {
        let cases = [
            // Another revision, or the revision not as a string.
            PLAIN_META.replace("\"2026-07-28\"", "\"2025-11-25\""),
            PLAIN_META.replace("\"2026-07-28\"", "20260728"),
            // Client info or capabilities that are not objects.
            PLAIN_META.replace(r#"{"name":"inspector","version":"1"}"#, "\"inspector\""),
            PLAIN_META.replace("Capabilities\":{}", "Capabilities\":[]"),
            // Another key of the protocol's (a related task, say).
            format!(r#"{PLAIN_META},"io.modelcontextprotocol/relatedTask":{{"taskId":"t"}}"#),
            // A log level that is none, a progress token that is neither a string nor an
            // integer.
            format!(r#"{PLAIN_META},"io.modelcontextprotocol/logLevel":"loud""#),
            format!(r#"{PLAIN_META},"progressToken":{{"a":1}}"#),
        ];
        for case in cases {
            let json = format!("{case}}}");
            assert!(Envelope::read(&meta(&json)).is_none(), "{case}");
        }
        // A required key missing.
        let json = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#;
        assert!(Envelope::read(&meta(json)).is_none());
    }
}
