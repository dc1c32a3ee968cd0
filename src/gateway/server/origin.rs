//! Who is asking: the virtual server, the caller and the capabilities of a request, read
//! from rmcp's request context and the session it belongs to.

use std::sync::Arc;

use rmcp::{Peer, RoleServer, model::ClientCapabilities, service::RequestContext};

use super::{GatewayServer, Scope};
use crate::{
    error::GatewayError,
    gateway::{
        Origin, ProgressTarget, View,
        client_requests::{SessionCaller, StatelessCaller},
    },
    security::{Lease, Principal},
    upstream::ProgressSink,
};

impl GatewayServer {
    /// What a session-era client declared at `initialize` (`None` before it has).
    pub(super) fn client_capabilities(
        &self,
        client: &Peer<RoleServer>,
    ) -> Option<Arc<ClientCapabilities>> {
        if let Some(known) = self.capabilities.get() {
            return Some(known.clone());
        }
        let declared = Arc::new(client.peer_info()?.capabilities.clone());
        Some(self.capabilities.get_or_init(|| declared).clone())
    }

    /// The virtual server a request is for, if any.
    pub(super) fn view(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Option<Arc<View>>, GatewayError> {
        let scope = self.scope.clone().or_else(|| {
            context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Scope>())
                .map(|scope| scope.0.clone())
        });
        match scope {
            None => Ok(None),
            Some(name) => self.gateway.view(&name).map(Some).ok_or_else(|| {
                GatewayError::UnknownVirtualServer {
                    name: name.to_string(),
                }
            }),
        }
    }

    /// Who is asking, from rmcp's request context: its cancellation, its progress token if it
    /// asked for progress, and how the requests it causes upstream reach it.
    pub(super) fn origin(
        &self,
        context: &RequestContext<RoleServer>,
    ) -> Result<Origin, GatewayError> {
        let view = self.view(context)?;
        let cancel = context.ct.clone();
        let progress = context.meta.get_progress_token().map(|token| {
            Arc::new(ProgressTarget {
                client: context.peer.clone(),
                token,
            }) as Arc<dyn ProgressSink>
        });
        let stateless = context
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        let parts = context.extensions.get::<http::request::Parts>();
        let principal = self.principal.clone().or_else(|| {
            parts
                .and_then(|parts| parts.extensions.get::<Principal>())
                .map(Principal::identity)
        });
        let credential = self
            .lease
            .clone()
            .or_else(|| parts.and_then(|parts| parts.extensions.get::<Lease>().cloned()));
        if stateless {
            let capabilities = context.meta.client_capabilities().unwrap_or_default();
            let log_level = context.meta.log_level();
            let caller = StatelessCaller::new(context.peer.clone(), log_level);
            Ok(Origin {
                cancel,
                progress,
                caller: Some(Arc::new(caller)),
                stateless: true,
                capabilities: Some(Arc::new(capabilities)),
                connections: None,
                log_level,
                client: context
                    .meta
                    .client_info()
                    .map(|info| Arc::from(info.name.as_str())),
                principal,
                view,
                credential,
            })
        } else {
            let capabilities = self.client_capabilities(&context.peer);
            let caller = SessionCaller {
                session: self.session,
                client: context.peer.clone(),
                request: context.id.clone(),
                log_level: self.log_level.clone(),
                capabilities: capabilities.clone(),
            };
            Ok(Origin {
                cancel,
                progress,
                caller: Some(Arc::new(caller)),
                stateless: false,
                capabilities,
                connections: self.connections.clone(),
                log_level: self.log_level.get(),
                client: context
                    .peer
                    .peer_info()
                    .map(|info| Arc::from(info.client_info.name.as_str())),
                principal,
                view,
                credential,
            })
        }
    }
}
