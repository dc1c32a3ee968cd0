//! The call history: every `tools/call`, whichever door it came by, is recorded with its
//! client, user, upstream, duration and outcome. Recording is a non-blocking send to the
//! call log's writer; nothing here touches the database.

use std::sync::Arc;

use futures::future::BoxFuture;

use rmcp::model::{CallToolRequestParams, CallToolResponse};
use tracing::Instrument;

use super::{
    Gateway, Origin,
    tool_search::{self, Searched},
};
use crate::{
    error::GatewayError,
    metrics::metrics,
    registry::{self, CallLog, CallRecord},
    upstream::Upstream,
};

/// A `tools/call` being routed and sent: the upstream and the tool's own name it was routed
/// to, and how it went.
pub(super) type Routed<'a, T> =
    BoxFuture<'a, Result<(Arc<Upstream>, String, Result<T, GatewayError>), GatewayError>>;

impl Gateway {
    /// Records every `tools/call` from now on in `log`.
    pub fn keep_call_history(&self, log: CallLog) {
        let _ = self.call_log.set(log);
    }

    /// Routes a `tools/call` to the upstream that owns the name and returns its answer whole;
    /// counts it in the metrics and records it in the call history.
    ///
    /// The call is abandoned (and `notifications/cancelled` sent upstream by rmcp) when
    /// `cancel` fires or the upstream's call deadline passes. While the gateway drains, new
    /// calls are refused, and calls still running when the drain time is over give up.
    pub async fn call_tool(
        &self,
        mut params: CallToolRequestParams,
        origin: &Origin,
    ) -> Result<CallToolResponse, GatewayError> {
        let view = origin.view.as_deref();
        if tool_search::is_search_tool(&params.name) && self.searches(view) {
            self.wait_started().await;
            match tool_search::answer(params, &self.catalog_for(view))? {
                Searched::Answer(result) => return Ok(CallToolResponse::Complete(result)),
                // Recorded, counted and routed as the tool it names, in the caller's view.
                Searched::Call(call) => params = call,
            }
        }
        // Every line logged on the call's way carries the tool and, once routed, the upstream.
        let span = tracing::info_span!(
            "tool_call",
            tool = %params.name,
            upstream = tracing::field::Empty
        );
        self.call_tool_in(params, origin).instrument(span).await
    }

    async fn call_tool_in(
        &self,
        mut params: CallToolRequestParams,
        origin: &Origin,
    ) -> Result<CallToolResponse, GatewayError> {
        let name = params.name.to_string();
        self.recorded(
            &name,
            origin,
            Box::pin(async {
                let view = origin.view.as_deref();
                let arguments = Some(&mut params.arguments);
                let (upstream, original) = self.tool_route(&params.name, view, arguments)?;
                tracing::Span::current().record("upstream", upstream.name());
                let outcome = self
                    .send_call(&upstream, original.clone(), params, origin)
                    .await;
                Ok((upstream, original, outcome))
            }),
        )
        .await
    }

    /// Runs a routed `tools/call` (`call` routes and sends it) under the drain, and records
    /// it: the metrics, the log line, the call history.
    ///
    /// `call` comes boxed: a future passed by value is kept whole in each future that holds
    /// it on the way (this one, the wait for the start, the select), and every layer is moved
    /// at least once; boxed, what moves is a pointer.
    pub(super) async fn recorded<T: Outcome>(
        &self,
        name: &str,
        origin: &Origin,
        call: Routed<'_, T>,
    ) -> Result<T, GatewayError> {
        let _in_flight = self.drain.admit()?;
        let at = registry::now_ms();
        let started = std::time::Instant::now();
        let log = self.call_log.get();
        let call = async {
            self.wait_started().await;
            call.await
        };
        let routed = tokio::select! {
            routed = call => routed,
            () = self.drain.over() => Err(GatewayError::ShuttingDown),
        };
        // Metrics name a tool by its upstream's own name, whatever a view calls it, and
        // only once routed: names clients make up must not grow the series.
        let (upstream, tool, outcome) = match routed {
            Ok((upstream, original, outcome)) => (Some(upstream), original, outcome),
            Err(error) => (None, String::new(), Err(error)),
        };
        let upstream_name = upstream
            .as_deref()
            .map(Upstream::name)
            .or_else(|| outcome.as_ref().err().and_then(GatewayError::upstream));
        let (kind, error) = match &outcome {
            Ok(answer) => (answer.kind(), None),
            Err(GatewayError::Cancelled) => ("cancelled", None),
            Err(error) => ("error", Some(error.to_string())),
        };
        let took = started.elapsed();
        match &error {
            None => tracing::debug!(outcome = kind, ?took, "call done"),
            Some(error) => tracing::info!(outcome = kind, ?took, "call failed: {error}"),
        }
        metrics().call(upstream.as_deref().map(Upstream::name), &tool, kind, took);
        if let Some(log) = log {
            log.record(CallRecord {
                id: 0,
                at,
                client: origin.client.as_deref().map(str::to_owned),
                principal: origin.principal.as_ref().map(|who| who.name.to_string()),
                upstream: upstream_name.map(str::to_owned),
                tool: name.to_owned(),
                duration_us: took.as_micros() as i64,
                outcome: kind.to_owned(),
                error,
            });
        }
        outcome
    }
}

/// How a call's answer counts: `ok`, `tool_error` or `input_required`.
pub trait Outcome {
    fn kind(&self) -> &'static str;
}

impl Outcome for CallToolResponse {
    fn kind(&self) -> &'static str {
        match self {
            CallToolResponse::Complete(result) if result.is_error == Some(true) => "tool_error",
            CallToolResponse::InputRequired(_) => "input_required",
            _ => "ok",
        }
    }
}
