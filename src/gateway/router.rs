//! The gateway's own way for a `tools/call`: route by lookup, send on the upstream's lane
//! (see [`Upstream::call`]), shape for the client — with the arguments and the result kept as
//! the JSON text the client and the upstream wrote. Only the name (the upstream's own), the
//! hop's `_meta` keys and, for a 2026-07-28 client, `resultType` are rewritten.
//!
//! A door takes this way for the requests it can read whole (see the HTTP door's
//! `fast` module); everything else goes through rmcp's typed server. Both end in the same
//! places: [`Gateway::recorded`] for the metrics and call history, and
//! [`super::conversation`] when a 2026-07-28 client calls a session-era upstream.

use std::{borrow::Cow, sync::Arc};

use rmcp::model::{CallToolRequestParams, InputRequests, JsonObject};
use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};
use tracing::Instrument;

use super::{
    Gateway, Origin, View,
    client_requests::{LOG_LEVEL_META, Retry, Round, with_input_rounds},
    conversation::{Reply, Starter},
    forward::send_raw,
    history::Outcome,
    per_user,
    routes::ReadArguments,
    tool_search,
};
use crate::{
    config::TaskSupport,
    error::GatewayError,
    upstream::{Mirrored, Outgoing, Upstream, UpstreamLane},
};

mod search;
mod shape;

pub use shape::typed_answer_text;

/// A `tools/call` as the client sent it, read as far as routing needs: what the REST doors
/// hand [`Gateway::call_tool_text`].
pub struct ToolCall<'a> {
    /// The name the client called (the catalog's).
    pub name: &'a str,
    pub arguments: Option<&'a RawValue>,
    /// The client's `_meta`; the keys of its own hop are dropped here.
    pub meta: Map<String, Value>,
    /// What a 2026-07-28 client's retry of an `input_required` round carries: its answers
    /// and the state the round's result gave it; none for a first call.
    pub retry: Retry,
}

/// A tool whose calls can go the gateway's own way (see [`Gateway::lane_tool`]), with the call
/// as that way routes it: the tool search's `call_tool` unwrapped to the tool it names, once.
pub struct LaneTool<'a> {
    /// The tool routed to: the one called, or the one `call_tool` names.
    name: Cow<'a, str>,
    /// Its arguments, as the client wrote them.
    arguments: Option<Cow<'a, RawValue>>,
    /// The tool search's `search_tools` or `list_tool_names`: answered by the gateway
    /// (`router/search.rs`), not routed. Decided once, by [`Gateway::lane_tool`].
    answered_here: bool,
    /// The arguments parsed, once a door needed them (see [`LaneTool::parsed_arguments`]), so
    /// that the router does not parse them again.
    parsed: Option<JsonObject>,
    /// Its input schema as clients see it, when it marks arguments for headers (SEP-2243):
    /// the HTTP door checks a 2026-07-28 call's `Mcp-Param-*` headers against it.
    pub header_schema: Option<Arc<JsonObject>>,
}

impl LaneTool<'_> {
    /// The name the call is routed by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments as an object, parsed the first time they are asked for; `None` when the
    /// call has none.
    pub fn parsed_arguments(&mut self) -> Result<Option<&JsonObject>, serde_json::Error> {
        if self.parsed.is_none()
            && let Some(text) = &self.arguments
        {
            self.parsed = Some(serde_json::from_str(text.get())?);
        }
        Ok(self.parsed.as_ref())
    }

    /// The same tool and call, owning what it borrowed: for a call that runs on a task of its
    /// own.
    pub fn into_owned(self) -> LaneTool<'static> {
        LaneTool {
            name: Cow::Owned(self.name.into_owned()),
            arguments: self.arguments.map(|text| Cow::Owned(text.into_owned())),
            answered_here: self.answered_here,
            parsed: self.parsed,
            header_schema: self.header_schema,
        }
    }
}

/// A call [`Gateway::lane_tool`] took, with what the client's request says beside the tool and
/// its arguments.
pub struct LaneCall<'a> {
    pub tool: LaneTool<'a>,
    /// The client's `_meta`; the keys of its own hop are dropped here.
    pub meta: Map<String, Value>,
    /// What a 2026-07-28 client's retry of an `input_required` round carries: its answers
    /// and the state the round's result gave it; none for a first call.
    pub retry: Retry,
}

/// A `tools/call` routed to its upstream: the upstream's name for the tool, and the
/// arguments as far as they were read.
struct Routed<'a> {
    /// The name the client called (the catalog's).
    name: &'a str,
    original: &'a str,
    /// The arguments as the client wrote them.
    text: Option<&'a RawValue>,
    arguments: ReadArguments,
    meta: Map<String, Value>,
    retry: Retry,
}

/// A `tools/call` result for the client, as JSON text.
pub struct RawAnswer {
    pub result: String,
    kind: &'static str,
}

impl Outcome for RawAnswer {
    fn kind(&self) -> &'static str {
        self.kind
    }
}

impl Gateway {
    /// Whether a `tools/call` of `name` through `view` can go the gateway's own way, and the
    /// call as that way routes it; `None` when it cannot. It can when its upstream has a lane;
    /// a session-era client of an upstream that serves such clients on a session-era twin
    /// (see `upstream::twin`) goes on the twin's lane. A tool that runs as a task for a client
    /// that takes tasks (`takes_tasks`) runs as one on the typed way.
    ///
    /// The tool search's `call_tool` goes the way of the tool it names, unwrapped here (its
    /// `arguments` say which); its other tools are answered by the gateway on this way too
    /// (`router/search.rs`).
    pub fn lane_tool<'a>(
        &self,
        name: &'a str,
        arguments: Option<&'a RawValue>,
        view: Option<&View>,
        takes_tasks: bool,
    ) -> Option<LaneTool<'a>> {
        let searched = tool_search::is_search_tool(name) && self.searches(view);
        let header_schema = if searched && name == tool_search::CALL {
            // A call that cannot be unwrapped is refused on the typed way, in its words.
            let (inner, arguments) = tool_search::unwrap_call(arguments).ok()?;
            // `call_tool` runs as a plain call of the tool it names, whatever its client
            // takes, on the typed way too: asked as for a client that takes no tasks. And
            // the client called `call_tool`, whose schema marks no argument for a header.
            self.lane_tool_named(&inner, view, false)?;
            return Some(LaneTool {
                name: inner,
                arguments: arguments.map(Cow::Borrowed),
                answered_here: false,
                parsed: None,
                header_schema: None,
            });
        } else if searched {
            // `search_tools` and `list_tool_names`: the gateway's own answers.
            None
        } else {
            self.lane_tool_named(name, view, takes_tasks)?
        };
        Some(LaneTool {
            name: Cow::Borrowed(name),
            arguments: arguments.map(Cow::Borrowed),
            // Only `search_tools` and `list_tool_names` are left of the search's tools here.
            answered_here: searched,
            parsed: None,
            header_schema,
        })
    }

    /// Whether a call of catalog tool `name` can go the gateway's own way: `Some` with its input
    /// schema as clients see it when that marks arguments for headers.
    fn lane_tool_named(
        &self,
        name: &str,
        view: Option<&View>,
        takes_tasks: bool,
    ) -> Option<Option<Arc<JsonObject>>> {
        let catalog = self.catalog_for(view);
        let route = catalog.route(name)?;
        // The gateway runs a task on the typed way (`tasks/run.rs`) for a tool that may run
        // as one, called by a client that takes tasks; a tool that runs as a task alone
        // refuses a client that does not, there too. Every other call is a plain one, here;
        // a task the upstream makes of it is passed on (`Gateway::shape`).
        let plain = match super::tasks::task_support_of(route) {
            TaskSupport::Forbidden => true,
            TaskSupport::Optional => !takes_tasks,
            TaskSupport::Required => false,
        };
        // An `isolation: per-session` upstream's call goes on the session's own connection,
        // which the origin carries (`Gateway::connect`), as on the typed way.
        // A per-user upstream's call goes on its user's own connection, or asks them to sign
        // in (`Gateway::connect`), as on the typed way; their answer comes in a retry, which
        // takes the typed way.
        let takes = route.upstream.lane().is_some() && plain;
        takes.then(|| {
            route
                .marks_headers()
                .then(|| route.item.input_schema.clone())
        })
    }

    /// Routes and sends `call` for `origin` on the upstream's lane; counts and records it
    /// like every call. The tool search's `call_tool` came unwrapped ([`Gateway::lane_tool`]):
    /// it is recorded, counted and routed as the tool it names, in the caller's view, as on
    /// the typed way; its `search_tools` and `list_tool_names` are answered by the gateway.
    pub async fn call_tool_raw(
        &self,
        call: LaneCall<'_>,
        origin: &Origin,
    ) -> Result<RawAnswer, GatewayError> {
        if call.tool.answered_here {
            // Boxed: kept out of the plain call's future.
            return Box::pin(self.search_answer(&call.tool, origin)).await;
        }
        self.call_catalog_tool(call, origin).await
    }

    /// [`Gateway::call_tool_raw`] for a catalog tool.
    async fn call_catalog_tool(
        &self,
        call: LaneCall<'_>,
        origin: &Origin,
    ) -> Result<RawAnswer, GatewayError> {
        let LaneCall {
            tool,
            meta,
            mut retry,
        } = call;
        let name: &str = &tool.name;
        // `lane`: the log tells which way a call went.
        let span = tracing::info_span!(
            "tool_call",
            tool = %name,
            upstream = tracing::field::Empty,
            lane = true
        );
        self.recorded(
            name,
            origin,
            Box::pin(async {
                let text = tool.arguments.as_deref();
                let (upstream, original, arguments) =
                    self.raw_tool_route(name, origin.view.as_deref(), text, tool.parsed)?;
                tracing::Span::current().record("upstream", upstream.name());
                if retry.input_responses.is_some() {
                    // Boxed: a retry's way, kept out of the plain call's future.
                    let responses = &mut retry.input_responses;
                    let taken = Box::pin(self.take_sign_in(&upstream, responses, origin)).await;
                    if let Err(error) = taken {
                        return Ok((upstream, original, Err(error)));
                    }
                }
                // A session-era client may be served on the upstream's session-era twin.
                let outcome = match self.connect(&upstream, origin).await {
                    Ok((connection, _)) => match connection.lane() {
                        Some(lane) => {
                            let call = Routed {
                                name,
                                original: &original,
                                text,
                                arguments,
                                meta,
                                retry,
                            };
                            self.send_on_lane(&connection, lane, call, origin).await
                        }
                        None => Err(GatewayError::UpstreamUnavailable {
                            upstream: upstream.name().to_owned(),
                            reason: "its connection has no lane".into(),
                        }),
                    },
                    // A 2026-07-28 client is asked to sign in the way that revision asks for
                    // input (`per_user`).
                    Err(error) if origin.stateless => sign_in_asked(error),
                    Err(error) => Err(error),
                };
                Ok((upstream, original, outcome))
            }),
        )
        .instrument(span)
        .await
    }

    /// A `tools/call` for a door that answers with the result's JSON text (the REST surface):
    /// the lane's way when the tool's upstream has one, the typed way otherwise.
    pub async fn call_tool_text(
        &self,
        call: ToolCall<'_>,
        origin: &Origin,
    ) -> Result<String, GatewayError> {
        let takes_tasks = origin.takes_tasks();
        let view = origin.view.as_deref();
        if let Some(tool) = self.lane_tool(call.name, call.arguments, view, takes_tasks) {
            let (meta, retry) = (call.meta, call.retry);
            let call = LaneCall { tool, meta, retry };
            return Ok(self.call_tool_raw(call, origin).await?.result);
        }
        let invalid = |error: serde_json::Error| GatewayError::InvalidArguments {
            reason: error.to_string(),
        };
        let mut params = CallToolRequestParams::new(call.name.to_owned());
        if let Some(arguments) = call.arguments {
            params = params.with_arguments(serde_json::from_str(arguments.get()).map_err(invalid)?);
        }
        if !call.meta.is_empty() {
            params.meta = Some(rmcp::model::RequestMetaObject::from(call.meta));
        }
        params.input_responses = call.retry.input_responses;
        params.request_state = call.retry.request_state;
        typed_answer_text(self.call_tool(params, origin).await?, origin.stateless)
    }

    async fn send_on_lane(
        &self,
        upstream: &Arc<Upstream>,
        lane: UpstreamLane,
        routed: Routed<'_>,
        origin: &Origin,
    ) -> Result<RawAnswer, GatewayError> {
        let Routed {
            name: called,
            original,
            text,
            arguments: ReadArguments { read, rewritten },
            mut meta,
            mut retry,
        } = routed;
        let session_era_upstream = upstream
            .state()
            .protocol_version
            .as_ref()
            .is_none_or(|version| version.has_initialize());
        meta.retain(|key, _| {
            key != "progressToken" && !key.starts_with("io.modelcontextprotocol/")
        });
        if !session_era_upstream && let Some(level) = origin.log_level {
            // A 2026-07-28 upstream sends a request's log messages only if it asks for them:
            // at the level of the client's request, or of its session.
            meta.insert(
                LOG_LEVEL_META.to_owned(),
                serde_json::to_value(level).unwrap_or_default(),
            );
        }
        let internal = |error: serde_json::Error| GatewayError::Internal {
            reason: error.to_string(),
        };
        let name = serde_json::to_string(original).map_err(internal)?;
        // The client's text goes as it is, unless the overrides rewrote it. Arguments a
        // 2026-07-28 upstream wants in headers too are read from its own definition of the
        // tool, pinned values included.
        let arguments = match (&read, rewritten) {
            (Some(arguments), true) => Some(Cow::Owned(
                serde_json::to_string(arguments).map_err(internal)?,
            )),
            (None, true) => None,
            (_, false) => text.map(|text| Cow::Borrowed(text.get())),
        };
        let in_headers = match &read {
            Some(arguments) if lane.mirrors() => upstream.header_arguments(original, arguments),
            _ => Vec::new(),
        };
        let mut members = match &arguments {
            Some(arguments) => ["\"name\":", &name, ",\"arguments\":", arguments].concat(),
            None => ["\"name\":", &name].concat(),
        };
        if !session_era_upstream {
            // A retry (a 2026-07-28 client's, or the REST proxy's) goes to a 2026-07-28
            // upstream as it came: the answers to the upstream's own questions, and the state
            // it gave.
            with_retry(&mut members, std::mem::take(&mut retry))?;
        }
        let outgoing = Outgoing {
            method: "tools/call".into(),
            mirrored: Mirrored {
                name: Some(original.to_owned()),
                arguments: in_headers,
            },
            members,
            meta,
            deadline: upstream
                .config()
                .tool_timeout(original, upstream.call_timeout()),
        };
        let reply = if origin.stateless && session_era_upstream {
            // It may ask the client something mid-call: the conversation bridges that.
            let binding = format!("tools/call\n{called}");
            let of_call = upstream.clone();
            let start: Starter = Box::new(move |call_origin| {
                Box::pin(async move {
                    send_raw(&of_call, &lane, outgoing, &call_origin)
                        .await
                        .map(Reply::Raw)
                })
            });
            // Boxed, as the bridge below: each way's future is kept out of the plain call's,
            // which stays small (see `Gateway::recorded`).
            Box::pin(
                self.conversations
                    .converse(upstream, start, retry, origin, &binding),
            )
            .await?
        } else if !origin.stateless && !session_era_upstream {
            // It may answer `input_required`: the client is asked on its session.
            Reply::Raw(Box::pin(bridge_input(upstream, &lane, outgoing, origin)).await?)
        } else {
            Reply::Raw(send_raw(upstream, &lane, outgoing, origin).await?)
        };
        self.shape(upstream, reply, origin)
    }
}

/// The `input_required` result that asks a 2026-07-28 client for the sign-in `error` says it
/// must make; any other error as it is.
fn sign_in_asked(error: GatewayError) -> Result<RawAnswer, GatewayError> {
    let asked = per_user::sign_in_request(error)?;
    Ok(RawAnswer {
        result: asked.to_string(),
        kind: "input_required",
    })
}

/// What a 2026-07-28 upstream's `input_required` result asks.
#[derive(Deserialize)]
struct InputPeek<'a> {
    #[serde(rename = "resultType", borrow)]
    result_type: Option<&'a str>,
    #[serde(rename = "inputRequests")]
    input_requests: Option<InputRequests>,
    #[serde(rename = "requestState")]
    request_state: Option<String>,
}

/// Sends `outgoing` to a 2026-07-28 upstream for a session-era client, putting what its
/// `input_required` answers ask to the client (its caller), as
/// [`super::forward::send_bridged`] does on rmcp's way.
async fn bridge_input(
    upstream: &Upstream,
    lane: &UpstreamLane,
    outgoing: Outgoing,
    origin: &Origin,
) -> Result<Box<RawValue>, GatewayError> {
    let Some(caller) = origin.caller.as_deref() else {
        return send_raw(upstream, lane, outgoing, origin).await;
    };
    let unreadable = |error: serde_json::Error| crate::upstream::unreadable(upstream, &error);
    let send = |retry: Option<Retry>| {
        let mut outgoing = outgoing.clone();
        let written = retry.map_or(Ok(()), |retry| with_retry(&mut outgoing.members, retry));
        async move {
            written?;
            send_raw(upstream, lane, outgoing, origin).await
        }
    };
    let read = |raw: Box<RawValue>| {
        let peek: InputPeek = serde_json::from_str(raw.get()).map_err(unreadable)?;
        Ok(match peek.result_type {
            Some("input_required") => {
                Round::Asks(peek.input_requests.unwrap_or_default(), peek.request_state)
            }
            _ => Round::Done(raw),
        })
    };
    with_input_rounds(upstream, caller, &origin.cancel, send, read).await
}

/// Adds a retry's fields to the members (an object's text without its braces) of a request.
fn with_retry(members: &mut String, retry: Retry) -> Result<(), GatewayError> {
    let fields = [
        (
            "inputResponses",
            retry
                .input_responses
                .map(|answers| serde_json::to_string(&answers)),
        ),
        (
            "requestState",
            retry
                .request_state
                .map(|state| serde_json::to_string(&state)),
        ),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let value = value.map_err(|error| GatewayError::Internal {
                reason: error.to_string(),
            })?;
            members.push_str(&format!(",\"{name}\":{value}"));
        }
    }
    Ok(())
}
