//! Where a user signs in to a `credentials: per-user` upstream for themselves: the address a
//! call answered them with (`/oauth/connect/{id}`, see `gateway::per_user`). The page learns
//! who opened it, and sends them on to the upstream's authorization server only if they are
//! the user the address was made for: an address passed on to someone else signs nobody in
//! (the MCP spec's phishing defence for URL elicitations).
//! - A user of the registry logs in with their gateway password, which counts against the
//!   same limits as `/api/v1/auth/login`.
//! - A user of the identity provider is sent to log in there (`security::ProviderLogin`),
//!   and comes back to [`PROVIDER_CALLBACK_PATH`].
//!
//! Each step is bound to the browser that took the one before (`browser`): a login at the
//! provider finishes only in the browser that started it, and the upstream's sign-in only in
//! the browser that proved who the user is, so neither answer can be passed on to someone
//! else's browser.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Form,
    extract::{ConnectInfo, Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{
    AdminState, browser,
    oauth::{CallbackQuery, escape, page},
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
async fn form(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
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
    let (browser, new_cookie) =
        browser::id_or_new(&headers, state.gateway.oauth().served_over_https());
    match provider.start(&id, &browser).await {
        Ok(url) => redirect(&url, new_cookie),
        Err(why) => page(
            StatusCode::BAD_GATEWAY,
            &format!("The identity provider cannot be used now: {why}"),
        ),
    }
}

/// Where the identity provider sends the browser back: if whoever logged in there is the
/// user the address was made for, on to the upstream's authorization server.
async fn provider_callback(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(answer): Query<CallbackQuery>,
) -> Response {
    let (Some(provider), Some(login)) = (&state.provider_login, &answer.state) else {
        return page(StatusCode::BAD_REQUEST, "This is not an answer to a login.");
    };
    let Some(code) = &answer.code else {
        let error = answer.error.as_deref().unwrap_or("no code");
        let detail = answer.error_description.as_deref().unwrap_or("");
        return page(
            StatusCode::UNAUTHORIZED,
            &format!(
                "The identity provider did not log you in ({error} {detail}): nobody was signed in."
            ),
        );
    };
    let browser = browser::id_of(&headers);
    let (id, who) = match provider
        .finish(login, code, answer.iss.as_deref(), browser)
        .await
    {
        Ok(done) => done,
        Err(LoginFailed::Unknown) => {
            return page(StatusCode::BAD_REQUEST, &LoginFailed::Unknown.to_string());
        }
        Err(LoginFailed::OtherBrowser) => {
            tracing::warn!("a login at the identity provider was answered in another browser");
            return page(
                StatusCode::FORBIDDEN,
                &LoginFailed::OtherBrowser.to_string(),
            );
        }
        Err(failed) => {
            tracing::warn!(%failed, "a login at the identity provider failed");
            return page(StatusCode::BAD_GATEWAY, &failed.to_string());
        }
    };
    let Some((upstream, connect)) = upstream_of(&state, &id) else {
        return unknown();
    };
    // `finish` checked that this browser started the login, so it has its id.
    let browser = (browser.unwrap_or_default().to_owned(), None);
    let who_is_there = (who.identity().owner(), who.username.as_str());
    onward(&connect, who_is_there, &upstream, browser).await
}

async fn log_in(
    State(state): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
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
    let browser = browser::id_or_new(&headers, state.gateway.oauth().served_over_https());
    let who_is_there = (Owner::User(user.id), user.username.as_str());
    onward(&connect, who_is_there, &upstream, browser).await
}

/// Sends `owner` (named `name`), who proved who they are in `browser`, on to the upstream's
/// authorization server, if the address was made for them; the sign-in is bound to that
/// browser (`browser.1`: the cookie that gives it its id, when it had none).
async fn onward(
    connect: &Connect,
    (owner, name): (Owner, &str),
    upstream: &str,
    browser: (String, Option<HeaderValue>),
) -> Response {
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
    match auth.begin(Some(&browser.0)).await {
        Ok(url) => {
            tracing::info!(user = %name, %upstream, "a user's sign-in started");
            redirect(&url, browser.1)
        }
        Err(why) => page(
            StatusCode::BAD_GATEWAY,
            &format!("The sign-in cannot start: {why}"),
        ),
    }
}

/// A 303 to `url`, giving the browser its id cookie when it has none yet.
fn redirect(url: &str, new_cookie: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    if let Some(cookie) = new_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
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
