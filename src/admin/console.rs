//! The web console at `/ui` (and `/`, which leads there): pages for operators, signed in with
//! the registry's users.
//!
//! The pages are rendered here, from askama templates (`console/templates/`, escaped by
//! default), so `cargo build` needs no Node toolchain. Nothing is loaded from the network:
//! the stylesheet and htmx, which lets a page refresh a part of itself from a fragment of
//! server-rendered HTML, are served from the binary, and the Content-Security-Policy allows
//! nothing else.

mod calls;
mod config;
mod keys;
mod logs;
mod overview;
mod session;
mod text;
mod tools;
mod upstreams;

use std::sync::Arc;

use askama::Template;
use axum::{
    Router,
    extract::{FromRequestParts, Path},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};

use self::text::{Lang, Text};
use super::{AdminState, browser::cookie};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to(HOME) }))
        .route(HOME, get(overview::page))
        .route("/ui/", get(|| async { Redirect::to(HOME) }))
        .route("/ui/overview/live", get(overview::live_fragment))
        .route(
            session::LOGIN,
            get(session::login_page).post(session::log_in),
        )
        .route("/ui/logout", post(session::log_out))
        .route(upstreams::PAGE, get(upstreams::list).post(upstreams::add))
        .route("/ui/upstreams/states", get(upstreams::states))
        .route(
            "/ui/upstreams/{name}/edit",
            get(upstreams::edit).post(upstreams::save),
        )
        .route("/ui/upstreams/{name}/authorize", post(upstreams::authorize))
        .route("/ui/upstreams/{name}/{action}", post(upstreams::act))
        .route(tools::PAGE, get(tools::list))
        .route("/ui/tools/{name}", get(tools::show).post(tools::call))
        .route(calls::PAGE, get(calls::list))
        .route("/ui/calls/{id}", get(calls::show))
        .route(keys::PAGE, get(keys::list).post(keys::make))
        .route("/ui/keys/{id}/revoke", post(keys::revoke))
        .route(config::PAGE, get(config::show))
        .route("/ui/config/reload", post(config::reload))
        .route(logs::PAGE, get(logs::list))
        .route("/ui/logs/live", get(logs::live))
        .route("/ui/lang/{lang}", get(choose_language))
        .route("/ui/assets/{file}", get(asset))
}

/// The console's first page.
const HOME: &str = "/ui";

/// What every page's frame shows: the words, and who is signed in.
struct Frame {
    pub t: &'static Text,
    pub lang: Lang,
    pub user: Option<String>,
    /// The page's own path, which the language switch comes back to.
    pub here: &'static str,
}

impl Frame {
    fn new(headers: &HeaderMap, user: Option<String>, here: &'static str) -> Self {
        let lang = Lang::of(headers);
        Self {
            t: lang.text(),
            lang,
            user,
            here,
        }
    }
}

/// A rendered page, or a fragment of one, with the console's headers.
fn html(status: StatusCode, rendered: askama::Result<String>) -> Response {
    match rendered {
        Ok(body) => (status, secured(), body).into_response(),
        Err(error) => {
            tracing::error!(%error, "a console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page failed to render",
            )
                .into_response()
        }
    }
}

fn page(template: &impl Template) -> Response {
    html(StatusCode::OK, template.render())
}

/// The headers of every console answer: nothing but the gateway's own files may load, no
/// other site may frame the page, and pages (which show live state) are not cached.
fn secured() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' data:; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// `/ui/lang/{lang}`: keeps the language in a cookie and goes back to the page (`?back=`,
/// a console path).
async fn choose_language(
    Path(lang): Path<String>,
    axum::extract::Query(query): axum::extract::Query<Back>,
) -> Response {
    let Some(lang) = Lang::named(&lang) else {
        return (StatusCode::NOT_FOUND, "no such language").into_response();
    };
    // A console path, and one a header can carry.
    let back = query
        .back
        .filter(|back| {
            back.starts_with("/ui")
                && !back.contains("//")
                && back.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .unwrap_or_else(|| HOME.to_owned());
    let cookie = HeaderValue::from_str(&lang.cookie()).expect("a cookie of ASCII");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&back)).into_response()
}

#[derive(serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// The vendored files (see `assets/README.md`), cached a day.
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (
            include_bytes!("assets/htmx.min.js"),
            "text/javascript; charset=utf-8",
        ),
        "console.css" => (
            include_bytes!("console/assets/console.css"),
            "text/css; charset=utf-8",
        ),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A form post from the console's own pages (see [`same_origin`]); another site's is refused
/// with 403 before its handler runs.
struct SameOrigin;

impl FromRequestParts<Arc<AdminState>> for SameOrigin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AdminState>,
    ) -> Result<Self, Self::Rejection> {
        let public = state.config.server.public_url.as_deref();
        if same_origin(&parts.headers, public) {
            Ok(Self)
        } else {
            Err((StatusCode::FORBIDDEN, "a form of another site").into_response())
        }
    }
}

/// Whether a form post comes from the console's own pages: browsers say where a request
/// comes from (`Sec-Fetch-Site`, `Origin`), and a page of another site must not sign in or
/// act with the console's cookie (which `SameSite=Strict` already keeps from it). The page's
/// origin is the `Host` it was asked of, or `server.public_url` behind a reverse proxy that
/// changes `Host`.
fn same_origin(headers: &HeaderMap, public_url: Option<&str>) -> bool {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = header("origin") else {
        return true;
    };
    let asked_of = header("host").is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority == host)
    });
    asked_of || public_url.is_some_and(|public| public.trim_end_matches('/') == origin)
}

/// Milliseconds since the Unix epoch as `2026-12-04 12:18:44 UTC`.
fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}
