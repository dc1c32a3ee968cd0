//! The tool search's own tools (`search_tools` and `list_tool_names`) on the gateway's own
//! way: answered by the gateway from the caller's catalog, as on rmcp's typed way
//! ([`Gateway::call_tool`]), in the form the client's era takes. rmcp's typed server costs a
//! 2026-07-28 request several times what the call itself does, and a client of the search
//! calls these often. Neither reaches an upstream, so neither is recorded or counted as a
//! call, on either way.

use rmcp::model::{CallToolResponse, JsonObject};

use super::{LaneTool, RawAnswer, typed_answer_text};
use crate::{
    error::GatewayError,
    gateway::{Gateway, Origin, tool_search},
};

impl Gateway {
    /// The answer of a call of `tool`, `search_tools` or `list_tool_names`, for `origin`.
    pub(super) async fn search_answer(
        &self,
        tool: &LaneTool<'_>,
        origin: &Origin,
    ) -> Result<RawAnswer, GatewayError> {
        // The catalog is whole once the gateway has started, as on the typed way.
        self.wait_started().await;
        tracing::debug!(
            tool = tool.name(),
            "the tool search answers on the gateway's own way"
        );
        let arguments: JsonObject = match tool.arguments.as_deref() {
            Some(text) => serde_json::from_str(text.get()).map_err(|error| {
                GatewayError::InvalidArguments {
                    reason: error.to_string(),
                }
            })?,
            None => JsonObject::new(),
        };
        let catalog = self.catalog_for(origin.view.as_deref());
        let result = tool_search::own_answer(tool.name(), &arguments, &catalog)?;
        Ok(RawAnswer {
            result: typed_answer_text(CallToolResponse::Complete(result), origin.stateless)?,
            kind: "ok",
        })
    }
}
