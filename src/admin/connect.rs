//! Where a user signs in to a `credentials: per-user` upstream for themselves: the address a
//! call answered them with (`/oauth/connect/{id}`, see `gateway::per_user`). The page learns
//! who opened it, and sends them on to the upstream's authorization server only if they are
//! the user the address was made for: an address passed on to someone else signs nobody in
//! (the MCP spec's phishing defence for URL elicitations).
//! - A user of the registry logs in with their gateway password, which counts against the
//!   same limits as `/api/v1/auth/login`.
//! - A user of the identity provider is sent to log in there (`security::ProviderLogin`),
//!   and comes back to [`PROVIDER_CALLBACK_PATH`].

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Form,
    extract::{ConnectInfo, Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    AdminState,
    oauth::{escape, page},
};
use crate::{
    security::{LoginFailed, Owner, PROVIDER_CALLBACK_PATH},
    upstream::{CONNECT_PATH, Connect},
};

pub(super) fn route() -> axum::Router<Arc<AdminState>> {
    axum::Router::new()
        .route(
            &format!("{CONNECT_PATH}/{{id}}"),
            axum::routing::get(form).post(log_in),
        )
        .route(
            PROVIDER_CALLBACK_PATH,
            axum::routing::get(provider_callback),
        )
}

#[derive(Deserialize)]
struct LogIn {
    username: String,
    password: String,
}

/// The login form, naming the upstream the user is about to sign in to; for a user of the
/// identity provider, the way to log in there.
async fn form(State(state): State<Arc<AdminState>>, Path(id): Path<String>) -> Response {
    let Some((upstream, connect)) = upstream_of(&state, &id) else {
        return unknown();
    };
    if let Owner::User(_) = connect.owner {
        return login_page(StatusCode::OK, &upstream, None);
    }
    let Some(provider) = &state.provider_login else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The gateway has no client at the identity provider (auth.oauth.client_id): ask \
             an administrator.",
        );
    };
    match provider.start(&id).await {
        Ok(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        Err(why) => page(
            StatusCode::BAD_GATEWAY,
            &format!("The identity provider cannot be used now: {why}"),
        ),
    }
}

/// What the identity provider sends the browser back with.
#[derive(Deserialize)]
struct ProviderAnswer {
    state: Option<String>,
    code: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Where the identity provider sends the browser back: if whoever logged in there is the
/// user the address was made for, on to the upstream's authorization server.
async fn provider_callback(
    State(state): State<Arc<AdminState>>,
    Query(answer): Query<ProviderAnswer>,
) -> Response {
    let (Some(provider), Some(login)) = (&state.provider_login, &answer.state) else {
        return page(StatusCode::BAD_REQUEST, "This is not an answer to a login.");
    };
    let Some(code) = &answer.code else {
        let error = answer.error.as_deref().unwrap_or("no code");
        return page(
            StatusCode::UNAUTHORIZED,
            &format!("The identity provider did not log you in ({error}): nobody was signed in."),
        );
    };
    let (id, who) = match provider.finish(login, code, answer.iss.as_deref()).await {
        Ok(done) => done,
        Err(LoginFailed::Unknown) => {
            return page(StatusCode::BAD_REQUEST, &LoginFailed::Unknown.to_string());
        }
        Err(failed) => {
            tracing::warn!(%failed, "a login at the identity provider failed");
            return page(StatusCode::BAD_GATEWAY, &failed.to_string());
        }
    };
    let Some((upstream, connect)) = upstream_of(&state, &id) else {
        return unknown();
    };
    onward(&connect, who.identity().owner(), &who.username, &upstream).await
}

async fn log_in(
    State(state): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    Form(login): Form<LogIn>,
) -> Response {
    let Some((upstream, connect)) = upstream_of(&state, &id) else {
        return unknown();
    };
    let address = peer.ip();
    let throttle = &state.login_throttle;
    if let Err(throttled) = throttle.attempt(&login.username, address, Instant::now()) {
        return page(StatusCode::TOO_MANY_REQUESTS, &throttled.to_string());
    }
    let user = match state
        .registry
        .check_password(&login.username, &login.password)
        .await
    {
        Ok(Some(user)) => user,
        Ok(None) => {
            tracing::info!(%address, %upstream, "wrong password at a sign-in address");
            return login_page(
                StatusCode::UNAUTHORIZED,
                &upstream,
                Some("Wrong username or password."),
            );
        }
        Err(error) => {
            tracing::error!(%error, "cannot check a password");
            return page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The gateway cannot check passwords now.",
            );
        }
    };
    throttle.succeeded(&login.username, address, Instant::now());
    onward(&connect, Owner::User(user.id), &user.username, &upstream).await
}

/// Sends `owner`, who proved who they are, on to the upstream's authorization server, if the
/// address was made for them.
async fn onward(connect: &Connect, owner: Owner, name: &str, upstream: &str) -> Response {
    if owner != connect.owner {
        tracing::warn!(user = %name, %upstream,
            "a sign-in address was opened by another user than the one it was made for");
        return page(
            StatusCode::FORBIDDEN,
            "This address was made for another user: nobody was signed in. Call the tool from \
             your own client for an address of your own.",
        );
    }
    let Some(auth) = connect.auth.upgrade() else {
        return unknown();
    };
    match auth.begin().await {
        Ok(url) => {
            tracing::info!(user = %name, %upstream, "a user's sign-in started");
            (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response()
        }
        Err(why) => page(
            StatusCode::BAD_GATEWAY,
            &format!("The sign-in cannot start: {why}"),
        ),
    }
}

/// The upstream and the sign-in address `id` names, while it is fresh.
fn upstream_of(state: &AdminState, id: &str) -> Option<(String, Connect)> {
    let connect = state.gateway.oauth().connect(id)?;
    let upstream = connect.auth.upgrade()?.upstream().to_owned();
    Some((upstream, connect))
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This sign-in address is unknown or expired: call the tool again for a new one.",
    )
}

fn login_page(status: StatusCode, upstream: &str, problem: Option<&str>) -> Response {
    let upstream = escape(upstream);
    let problem = problem
        .map(|problem| format!("<p role=alert>{}</p>", escape(problem)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><meta charset=utf-8><title>MCPS.ONE sign-in</title>\
         <h1>Sign in to {upstream}</h1>\
         <p>Log in to the gateway first: it signs you in to {upstream} as yourself.</p>{problem}\
         <form method=post>\
         <p><label>Username <input name=username autocomplete=username required></label>\
         <p><label>Password <input name=password type=password autocomplete=current-password required></label>\
         <p><button>Continue to {upstream}</button></form>\n"
    );
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // A password form inside another site's frame is how clickjacking starts.
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    (status, headers, html).into_response()
}
