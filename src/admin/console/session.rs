//! Signing in to the console: a form posts the registry user's name and password, and the
//! login token it earns (the one `POST /api/v1/auth/login` would give) is kept in an HttpOnly
//! cookie that only the console's own pages are sent (`SameSite=Strict`).

use std::{net::SocketAddr, sync::Arc};

use askama::Template;
use axum::{
    Form,
    extract::{ConnectInfo, FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{Frame, HOME, SameOrigin, cookie, html, page};
use crate::{
    admin::{AdminState, auth},
    registry::now_ms,
    security::Principal,
};

/// The sign-in page.
pub(super) const LOGIN: &str = "/ui/login";

/// The cookie that holds the login token.
const COOKIE: &str = "mcps_console";

/// A signed-in user of the console. A request without one is sent to the sign-in page (a
/// fragment's request is told to send its page there).
pub(super) struct Signed(pub Principal);

impl FromRequestParts<Arc<AdminState>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Self::Rejection> {
        let token = cookie(&parts.headers, COOKIE);
        let verified = match token {
            Some(token) => state.tokens.verify_anywhere(token, now_ms()).await,
            None => None,
        };
        match verified {
            // Only a login token is kept in the cookie; an API key never is.
            Some((principal, _)) if principal.key_name.is_none() => Ok(Self(principal)),
            _ if parts.headers.contains_key("hx-request") => Err((
                StatusCode::UNAUTHORIZED,
                [("hx-redirect", LOGIN)],
                "signed out",
            )
                .into_response()),
            _ => Err(Redirect::to(LOGIN).into_response()),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    frame: Frame,
    /// Why the last try failed.
    refused: Option<String>,
    username: String,
}

pub(super) async fn login_page(headers: HeaderMap) -> Response {
    page(&LoginPage {
        frame: Frame::new(&headers, None, LOGIN),
        refused: None,
        username: String::new(),
    })
}

#[derive(Deserialize)]
pub(super) struct Credentials {
    username: String,
    password: String,
}

pub(super) async fn log_in(
    State(state): State<Arc<AdminState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    _: SameOrigin,
    Form(credentials): Form<Credentials>,
) -> Response {
    match auth::log_in(&state, &credentials.username, &credentials.password, peer).await {
        Ok((token, expires_at)) => {
            let max_age = (expires_at - now_ms()).max(0) / 1000;
            let secure = state.gateway.oauth().served_over_https();
            let cookie = format!(
                "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
                if secure { "; Secure" } else { "" }
            );
            match HeaderValue::from_str(&cookie) {
                Ok(cookie) => ([(header::SET_COOKIE, cookie)], Redirect::to(HOME)).into_response(),
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "no cookie").into_response(),
            }
        }
        Err(refusal) => {
            let form = LoginPage {
                frame: Frame::new(&headers, None, LOGIN),
                refused: Some(refusal.message),
                username: credentials.username,
            };
            // The form again, with why: a page that loaded fine (a browser logs an error for a
            // page answered 401 or 429, which the refusal is to the API's login).
            html(StatusCode::OK, form.render())
        }
    }
}

pub(super) async fn log_out(
    State(state): State<Arc<AdminState>>,
    _: SameOrigin,
    Signed(user): Signed,
) -> Response {
    if let Err(error) = auth::log_out(&state, &user).await {
        tracing::warn!(error = %error.message, "signing out of the console");
    }
    let expired =
        HeaderValue::from_static("mcps_console=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, expired)], Redirect::to(LOGIN)).into_response()
}
