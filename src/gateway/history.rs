//! The call history: every `tools/call`, whichever door it came by, is recorded with its
//! client, user, upstream, duration and outcome. Recording is a non-blocking send to the
//! call log's writer; nothing here touches the database.

use rmcp::model::{CallToolRequestParams, CallToolResponse};

use super::{Gateway, Origin};
use crate::{
    error::GatewayError,
    registry::{self, CallLog, CallRecord},
};

impl Gateway {
    /// Records every `tools/call` from now on in `log`.
    pub fn keep_call_history(&self, log: CallLog) {
        let _ = self.call_log.set(log);
    }

    /// Routes a `tools/call` to the upstream that owns the name and returns its answer whole,
    /// and records it in the call history.
    ///
    /// The call is abandoned (and `notifications/cancelled` sent upstream by rmcp) when
    /// `cancel` fires or the upstream's call deadline passes. While the gateway drains, new
    /// calls are refused, and calls still running when the drain time is over give up.
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
        origin: &Origin,
    ) -> Result<CallToolResponse, GatewayError> {
        let _in_flight = self.drain.admit()?;
        // The name is kept only when there is a log to write it to: not on every call.
        let log = self.call_log.get();
        let tool = log.map(|_| params.name.to_string());
        let route = async {
            tokio::select! {
                outcome = self.route_call(params, origin) => outcome,
                () = self.drain.over() => Err(GatewayError::ShuttingDown),
            }
        };
        let (Some(log), Some(tool)) = (log, tool) else {
            return route.await.map(|(response, _)| response);
        };
        let at = registry::now_ms();
        let started = std::time::Instant::now();
        let (outcome, upstream) = match route.await {
            Ok((response, upstream)) => (Ok(response), Some(upstream.name().to_owned())),
            Err(error) => {
                let upstream = error.upstream().map(str::to_owned);
                (Err(error), upstream)
            }
        };
        let (kind, error) = match &outcome {
            Ok(CallToolResponse::Complete(result)) if result.is_error == Some(true) => {
                ("tool_error", None)
            }
            Ok(CallToolResponse::InputRequired(_)) => ("input_required", None),
            Ok(_) => ("ok", None),
            Err(error) => ("error", Some(error.to_string())),
        };
        log.record(CallRecord {
            id: 0,
            at,
            client: origin.client.as_deref().map(str::to_owned),
            principal: origin.principal.as_deref().map(str::to_owned),
            upstream,
            tool,
            duration_us: started.elapsed().as_micros() as i64,
            outcome: kind.to_owned(),
            error,
        });
        outcome
    }
}
