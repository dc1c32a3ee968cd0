//! Routing by lookup for the typed requests rmcp's server hands the gateway: which upstream
//! owns a tool, prompt or resource, and `tools/call` (routed and recorded by
//! [`Gateway::call_tool`]), `prompts/get`, `resources/read` and `completion/complete` sent
//! over that upstream's rmcp connection and shaped for the client. The raw way for a
//! `tools/call`, which most calls take, is [`super::router`]; both route with
//! [`Gateway::tool_route`].

use std::sync::Arc;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest,
    CompleteRequestParams, CompleteResult, GetPromptRequest, GetPromptRequestParams,
    GetPromptResponse, InputResponses, JsonObject, ReadResourceRequest, ReadResourceRequestParams,
    ReadResourceResponse, Reference, ResultType, ServerResult,
};
use serde_json::value::RawValue;

use super::{
    Gateway, Origin, View,
    forward::{send, send_bridged, strip_hop_meta, unexpected},
    per_user, read_cache,
};
use crate::{config::ToolOverride, error::GatewayError, security::Identity, upstream::Upstream};

/// The arguments of a `tools/call` on the gateway's own way, read only when the call needs
/// them: when the tool's overrides rewrite them, or when its schema marks some for headers
/// (SEP-2243), which a 2026-07-28 upstream over HTTP reads from its own definition.
pub(super) struct ReadArguments {
    /// The arguments read (rewritten, if `rewritten`); `None` when they were not read, or
    /// when the call has none.
    pub read: Option<JsonObject>,
    /// Whether they are the overrides' rewriting, to be sent instead of the client's text.
    pub rewritten: bool,
}

/// Puts the pinned values and defaults of a tool's `overrides` into a call's `arguments`: a
/// virtual server's rule first, then the upstream's, whose pinned values have the last word.
fn put_overrides(overrides: &[ToolOverride], arguments: &mut Option<JsonObject>) {
    for rule in overrides.iter().rev() {
        rule.apply_to_arguments(arguments);
    }
}

impl Gateway {
    /// The upstream that listed `uri`, or else the first whose template matches it, in the
    /// catalog of `view` (or of the whole gateway); an unknown-resource error otherwise.
    pub(super) fn resource_owner(
        &self,
        uri: &str,
        view: Option<&View>,
    ) -> Result<Arc<Upstream>, GatewayError> {
        self.catalog_for(view)
            .resources
            .owner_of(uri)
            .cloned()
            .ok_or_else(|| GatewayError::UnknownResource {
                uri: uri.to_owned(),
            })
    }

    /// The error for a name no catalog entry has. When the name carries the prefix of an
    /// upstream that is down, that upstream is named: its tools are missing because it is
    /// down, and "unknown tool" would send the user looking in the wrong place. (This only
    /// shapes the message; routing itself is a catalog lookup.)
    fn unrouted(&self, name: &str, view: Option<&View>) -> GatewayError {
        let down = self
            .upstreams
            .load()
            .iter()
            .filter(|upstream| view.is_none_or(|view| view.offers(upstream)))
            .filter(|upstream| !upstream.prefix().is_empty() && name.starts_with(upstream.prefix()))
            .max_by_key(|upstream| upstream.prefix().len())
            .map(|upstream| upstream.ready_peer());
        match down {
            Some(Err(unavailable)) => unavailable,
            _ => GatewayError::UnknownTool {
                name: name.to_owned(),
            },
        }
    }

    /// The upstream that owns the tool a client calls `name` (in its view), and the name the
    /// upstream knows it by. The tool's overrides put their pinned values and defaults into
    /// `arguments` ([`put_overrides`]).
    pub(super) fn tool_route(
        &self,
        name: &str,
        view: Option<&View>,
        arguments: Option<&mut Option<rmcp::model::JsonObject>>,
    ) -> Result<(Arc<Upstream>, String), GatewayError> {
        let catalog = self.catalog_for(view);
        let route = catalog
            .route(name)
            .ok_or_else(|| self.unrouted(name, view))?;
        if let Some(arguments) = arguments {
            put_overrides(&route.overrides, arguments);
        }
        Ok((route.upstream.clone(), route.original.clone()))
    }

    /// [`Gateway::tool_route`] for arguments kept as the JSON text the client wrote (the
    /// gateway's own way): the upstream, the name it knows the tool by, and the arguments
    /// read where the call needs them ([`ReadArguments`]); `parsed` when a door read them
    /// already.
    pub(super) fn raw_tool_route(
        &self,
        name: &str,
        view: Option<&View>,
        arguments: Option<&RawValue>,
        parsed: Option<JsonObject>,
    ) -> Result<(Arc<Upstream>, String, ReadArguments), GatewayError> {
        let catalog = self.catalog_for(view);
        let route = catalog
            .route(name)
            .ok_or_else(|| self.unrouted(name, view))?;
        let rewritten = route.overrides.iter().any(|rule| rule.changes_arguments());
        // Pinned values may go in headers as well as the client's (`header_arguments`).
        let read = if rewritten || route.marks_headers() {
            let mut parsed = match (parsed, arguments) {
                (Some(parsed), _) => Some(parsed),
                (None, Some(text)) => Some(serde_json::from_str(text.get()).map_err(|error| {
                    GatewayError::InvalidArguments {
                        reason: error.to_string(),
                    }
                })?),
                (None, None) => None,
            };
            if rewritten {
                put_overrides(&route.overrides, &mut parsed);
            }
            parsed
        } else {
            None
        };
        let arguments = ReadArguments { read, rewritten };
        Ok((route.upstream.clone(), route.original.clone(), arguments))
    }

    /// Sends a routed `tools/call` (see [`Gateway::call_tool`], which routes and records it)
    /// and returns the answer whole.
    pub(super) async fn send_call(
        &self,
        upstream: &Arc<Upstream>,
        original: String,
        mut params: CallToolRequestParams,
        origin: &Origin,
    ) -> Result<CallToolResponse, GatewayError> {
        self.take_sign_in(upstream, &mut params.input_responses, origin)
            .await?;
        let (upstream, peer) = match self.connect(upstream, origin).await {
            Ok(connection) => connection,
            // A 2026-07-28 client is asked to sign in the way that revision asks for input.
            Err(error) if origin.stateless => return per_user::as_input_required(error),
            Err(error) => return Err(error),
        };
        let binding = format!("tools/call\n{}", params.name);
        params.name = original.into();
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let conversations = &self.conversations;
        match send_bridged(&upstream, &peer, request, origin, conversations, &binding).await? {
            ServerResult::CallToolResult(mut result) => {
                // Session-era upstreams omit it; 2026-07-28 clients require it. rmcp strips it
                // again for session-era clients.
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(CallToolResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            other => Err(unexpected(&upstream, &other)),
        }
    }

    /// Takes the client's answer to the gateway's own sign-in question out of a retry's
    /// `responses`: a refusal ends the call; an acceptance waits on the connection that asked
    /// for the sign-in, so that the call's connection is a new one, with the fresh token.
    pub(super) async fn take_sign_in(
        &self,
        upstream: &Arc<Upstream>,
        responses: &mut Option<InputResponses>,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        match per_user::take_sign_in_answer(responses) {
            Some(per_user::SignInAnswer::Refused(reason)) => {
                Err(GatewayError::UpstreamUnavailable {
                    upstream: upstream.name().to_owned(),
                    reason,
                })
            }
            Some(per_user::SignInAnswer::Accepted) => {
                if let Some(who) = &origin.principal {
                    self.await_sign_in(upstream, who).await;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Routes a `prompts/get` by exposed prompt name.
    pub async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        origin: &Origin,
    ) -> Result<GetPromptResponse, GatewayError> {
        self.wait_started().await;
        let (upstream, original) =
            {
                let catalog = self.catalog_for(origin.view.as_deref());
                let route = catalog.prompts.route(&params.name).ok_or_else(|| {
                    GatewayError::UnknownPrompt {
                        name: params.name.clone(),
                    }
                })?;
                (route.upstream.clone(), route.original.clone())
            };
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        let binding = format!("prompts/get\n{}", params.name);
        params.name = original;
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
        let conversations = &self.conversations;
        match send_bridged(&upstream, &peer, request, origin, conversations, &binding).await? {
            ServerResult::GetPromptResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(GetPromptResponse::InputRequired(result))
            }
            other => Err(unexpected(&upstream, &other)),
        }
    }

    /// Routes a `resources/read` to the upstream that listed the URI or owns its template.
    pub async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        origin: &Origin,
    ) -> Result<ReadResourceResponse, GatewayError> {
        self.wait_started().await;
        let upstream = self.resource_owner(&params.uri, origin.view.as_deref())?;
        let principal = origin.principal.as_ref().map(Identity::key);
        let reader = read_cache::Reader {
            principal: principal.as_deref(),
            own_connection: self.takes_own_connection(&upstream, origin),
        };
        // Asked only once the caller may reach the upstream: a user who has not signed in to
        // a per-user one is told to, not served what another read.
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        let generation = upstream.state().generation;
        // A retry of an `input_required` round depends on more than the URI: never kept.
        let cacheable = params.input_responses.is_none() && params.request_state.is_none();
        let uri = params.uri.clone();
        if cacheable && let Some(kept) = self.read_cache.get(generation, &uri, &reader) {
            return Ok(ReadResourceResponse::Complete(kept));
        }
        let binding = format!("resources/read\n{}", params.uri);
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params));
        let conversations = &self.conversations;
        match send_bridged(&upstream, &peer, request, origin, conversations, &binding).await? {
            ServerResult::ReadResourceResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                if cacheable {
                    self.read_cache.keep(generation, &uri, &reader, &result);
                }
                Ok(ReadResourceResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(ReadResourceResponse::InputRequired(result))
            }
            other => Err(unexpected(&upstream, &other)),
        }
    }

    /// Routes `completion/complete` to the owner of the prompt or resource template.
    pub async fn complete(
        &self,
        mut params: CompleteRequestParams,
        origin: &Origin,
    ) -> Result<CompleteResult, GatewayError> {
        self.wait_started().await;
        let upstream = {
            let catalog = self.catalog_for(origin.view.as_deref());
            match &mut params.r#ref {
                Reference::Prompt(prompt) => {
                    let route = catalog.prompts.route(&prompt.name).ok_or_else(|| {
                        GatewayError::UnknownPrompt {
                            name: prompt.name.clone(),
                        }
                    })?;
                    prompt.name = route.original.clone();
                    route.upstream.clone()
                }
                Reference::Resource(resource) => catalog
                    .resources
                    .template_owner(&resource.uri)
                    .cloned()
                    .ok_or_else(|| GatewayError::UnknownResource {
                        uri: resource.uri.clone(),
                    })?,
                // A reference kind newer than this gateway: no way to know its owner.
                _ => {
                    return Err(GatewayError::UnknownResource {
                        uri: "<unsupported completion reference>".into(),
                    });
                }
            }
        };
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
        match send(&upstream, &peer, request, origin).await? {
            ServerResult::CompleteResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(result)
            }
            other => Err(unexpected(&upstream, &other)),
        }
    }
}
