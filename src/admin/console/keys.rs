//! The keys page: the signed-in user's API keys (made, bound to a virtual server or not,
//! revoked), and the virtual servers a key can be bound to, with their endpoints and tools.
//! Virtual servers are defined in proxy.yaml; a key is made and revoked here.

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{Frame, SameOrigin, page, session::Signed, timestamp};
use crate::{
    admin::{AdminState, auth},
    registry::StoredToken,
    security::Principal,
};

/// The page's own path.
pub(super) const PAGE: &str = "/ui/keys";

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    frame: Frame,
    keys: Vec<KeyRow>,
    servers: Vec<ServerRow>,
    /// A key just made: its name and the key itself, shown this once.
    made: Option<(String, String)>,
    refused: Option<String>,
}

struct KeyRow {
    id: i64,
    name: String,
    hint: String,
    made: String,
    revoked: Option<String>,
    virtual_server: Option<String>,
}

impl KeyRow {
    fn of(token: StoredToken) -> Self {
        Self {
            id: token.id,
            name: token.name,
            hint: token.hint,
            made: timestamp(token.created_at),
            revoked: token.revoked_at.map(timestamp),
            virtual_server: token.virtual_server,
        }
    }
}

struct ServerRow {
    name: String,
    tools: Vec<String>,
}

async fn render(
    state: &AdminState,
    headers: &HeaderMap,
    user: &Principal,
    made: Option<(String, String)>,
    refused: Option<String>,
) -> Response {
    let (keys, refused) = match state.registry.api_keys(user.user_id).await {
        Ok(keys) => (keys.into_iter().map(KeyRow::of).collect(), refused),
        Err(error) => (Vec::new(), Some(error.to_string())),
    };
    let mut names: Vec<&String> = state.config.virtual_servers.keys().collect();
    names.sort();
    let servers = names
        .into_iter()
        .filter_map(|name| {
            let view = state.gateway.view(name)?;
            let catalog = state.gateway.catalog_for(Some(&view));
            Some(ServerRow {
                name: name.clone(),
                tools: catalog
                    .tools()
                    .iter()
                    .map(|entry| entry.exposed_name().to_owned())
                    .collect(),
            })
        })
        .collect();
    page(&KeysPage {
        frame: Frame::new(headers, Some(user.username.clone()), PAGE),
        keys,
        servers,
        made,
        refused,
    })
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Signed(user): Signed,
) -> Response {
    render(&state, &headers, &user, None, None).await
}

#[derive(Deserialize)]
pub(super) struct NewKey {
    #[serde(default)]
    name: String,
    /// Blank: the whole gateway.
    #[serde(default)]
    virtual_server: String,
}

pub(super) async fn make(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Signed(user): Signed,
    Form(key): Form<NewKey>,
) -> Response {
    let bound = Some(key.virtual_server.trim()).filter(|server| !server.is_empty());
    match auth::make_key(&state, &user, &key.name, bound).await {
        Ok((token, secret)) => {
            render(&state, &headers, &user, Some((token.name, secret)), None).await
        }
        Err(error) => render(&state, &headers, &user, None, Some(error.message)).await,
    }
}

pub(super) async fn revoke(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Path(id): Path<i64>,
    Signed(user): Signed,
) -> Response {
    match auth::revoke_key_of(&state, &user, id).await {
        Ok(()) => Redirect::to(PAGE).into_response(),
        Err(error) => render(&state, &headers, &user, None, Some(error.message)).await,
    }
}
