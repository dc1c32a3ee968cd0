//! The upstreams page: every upstream with its state (kept current in place), restart for
//! any, edit, enable, disable and delete for those added through the API (proxy.yaml's are
//! changed in proxy.yaml), and a form that adds one or edits one, checked by the same rules as
//! the API's `POST` and `PATCH /api/v1/mcp/services` (the config file's schema, the spawn
//! allowlist, the egress policy).

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Map, json};

mod form;

use self::form::NewUpstream;
use super::{Frame, SameOrigin, html, page, session::Signed, text::Text};
use crate::{
    admin::{
        AdminState, browser,
        error::ApiError,
        oauth,
        services::{self, Service},
    },
    config::{CredentialsScope, OAuthGrant},
};

/// The page's own path.
pub(super) const PAGE: &str = "/ui/upstreams";

#[derive(Template)]
#[template(path = "upstreams.html")]
struct UpstreamsPage {
    frame: Frame,
    upstreams: Vec<Row>,
    /// What the last action did, or why it failed.
    notice: Option<Notice>,
    /// The form's fields: blank to add one, an upstream's to edit it, or as the user left
    /// them after a refusal.
    form: NewUpstream,
    /// The upstream the form edits; none: the form adds one.
    editing: Option<String>,
    /// The programs an upstream added here may run.
    allowlist: Vec<String>,
    /// The authorization server's page a sign-in just started at, for a browser without
    /// script (htmx follows it by itself).
    sign_in_at: Option<String>,
}

struct Notice {
    refused: bool,
    text: String,
}

struct Row {
    service: Service,
    state_label: &'static str,
    /// What it runs or where it connects.
    target: String,
    /// Whether an administrator signs the gateway in to it through a browser (`oauth:` with
    /// the authorization code grant, one sign-in shared by every caller).
    signs_in: bool,
}

/// The states alone, which the page swaps into its rows every two seconds.
#[derive(Template)]
#[template(path = "upstream_states.html")]
struct States {
    upstreams: Vec<Row>,
}

fn rows(state: &AdminState, t: &Text) -> Vec<Row> {
    state
        .gateway
        .upstreams()
        .iter()
        .map(|upstream| {
            let service = services::view(state, upstream);
            let target = match (&service.spec.command, &service.spec.url) {
                (Some(command), _) => std::iter::once(command.as_str())
                    .chain(service.spec.args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
                (None, Some(url)) => url.clone(),
                (None, None) => String::new(),
            };
            let signs_in = service.spec.oauth.as_ref().is_some_and(|oauth| {
                oauth.grant == OAuthGrant::AuthorizationCode
                    && oauth.credentials == CredentialsScope::Shared
            });
            Row {
                state_label: t.state(service.state),
                target,
                signs_in,
                service,
            }
        })
        .collect()
}

fn render(
    state: &AdminState,
    headers: &HeaderMap,
    user: String,
    notice: Option<Notice>,
    form: NewUpstream,
    editing: Option<String>,
) -> UpstreamsPage {
    let frame = Frame::new(headers, Some(user), PAGE);
    UpstreamsPage {
        upstreams: rows(state, frame.t),
        frame,
        notice,
        form,
        editing,
        allowlist: state.config.security.spawn_allowlist.clone(),
        sign_in_at: None,
    }
}

fn refusal(text: String) -> Option<Notice> {
    Some(Notice {
        refused: true,
        text,
    })
}

#[derive(Deserialize, Default)]
pub(super) struct Done {
    /// The upstream an action was done to.
    done: Option<String>,
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(done): Query<Done>,
    Signed(user): Signed,
) -> Response {
    let notice = done.done.map(|name| Notice {
        refused: false,
        text: format!("{}: {name}", Frame::new(&headers, None, PAGE).t.done),
    });
    page(&render(
        &state,
        &headers,
        user.username,
        notice,
        NewUpstream::default(),
        None,
    ))
}

pub(super) async fn states(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Signed(_): Signed,
) -> Response {
    let t = Frame::new(&headers, None, PAGE).t;
    html(
        StatusCode::OK,
        States {
            upstreams: rows(&state, t),
        }
        .render(),
    )
}

pub(super) async fn add(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Signed(user): Signed,
    Form(form): Form<NewUpstream>,
) -> Response {
    let added = match form.entry() {
        Ok(entry) => match services::parse_new(entry) {
            Ok((name, entry)) => services::register(&state, &name, entry)
                .await
                .map(|_| name)
                .map_err(|error| error.message),
            Err(error) => Err(error.message),
        },
        Err(why) => Err(why),
    };
    match added {
        Ok(name) => Redirect::to(&format!("{PAGE}?done={name}")).into_response(),
        Err(why) => page(&render(
            &state,
            &headers,
            user.username,
            refusal(why),
            form,
            None,
        )),
    }
}

/// `GET /ui/upstreams/{name}/edit`: the page with the form filled with the upstream's entry.
pub(super) async fn edit(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Signed(user): Signed,
) -> Response {
    let (notice, form, editing) = match state.gateway.upstream(&name) {
        Some(upstream) => {
            let shown = services::view(&state, &upstream);
            if shown.origin == "config" {
                let why = format!(
                    "{name}: {}",
                    Frame::new(&headers, None, PAGE).t.read_only_hint
                );
                (refusal(why), NewUpstream::default(), None)
            } else {
                (None, NewUpstream::of(&name, &shown.spec), Some(name))
            }
        }
        None => (
            refusal(format!("no upstream named {name:?}")),
            NewUpstream::default(),
            None,
        ),
    };
    page(&render(
        &state,
        &headers,
        user.username,
        notice,
        form,
        editing,
    ))
}

/// `POST /ui/upstreams/{name}/edit`: the edit form's answer, applied as the API's merge
/// patch; the upstream restarts with its new entry.
pub(super) async fn save(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Path(name): Path<String>,
    Signed(user): Signed,
    Form(form): Form<NewUpstream>,
) -> Response {
    let saved = match state.gateway.upstream(&name) {
        Some(upstream) => match form.patch(upstream.config()) {
            Ok(patch) => services::change(&state, &name, patch)
                .await
                .map(drop)
                .map_err(|error| error.message),
            Err(why) => Err(why),
        },
        None => Err(format!("no upstream named {name:?}")),
    };
    match saved {
        Ok(()) => Redirect::to(&format!("{PAGE}?done={name}")).into_response(),
        Err(why) => page(&render(
            &state,
            &headers,
            user.username,
            refusal(format!("{name}: {why}")),
            form,
            Some(name),
        )),
    }
}

/// `POST /ui/upstreams/{name}/{action}`: restart, enable, disable or delete.
pub(super) async fn act(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Path((name, action)): Path<(String, String)>,
    Signed(user): Signed,
) -> Response {
    let done = match action.as_str() {
        "restart" => services::restart(&state, &name).await.map(drop),
        "enable" | "disable" => {
            let patch = Map::from_iter([("disabled".to_owned(), json!(action == "disable"))]);
            services::change(&state, &name, patch).await.map(drop)
        }
        "delete" => services::remove(&state, &name).await,
        "sign-out" => match oauth::signing_in(&state, &user, &name) {
            Ok(auth) => auth.sign_out().await.map_err(ApiError::internal),
            Err(error) => Err(error),
        },
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match done {
        Ok(()) => Redirect::to(&format!("{PAGE}?done={name}")).into_response(),
        Err(error) => page(&render(
            &state,
            &headers,
            user.username,
            refusal(format!("{name}: {}", error.message)),
            NewUpstream::default(),
            None,
        )),
    }
}

/// `POST /ui/upstreams/{name}/authorize`: starts signing the gateway in to an OAuth upstream
/// and sends the browser to the authorization server's page. The sign-in is bound to this
/// browser (its `/oauth` cookie), so the URL finishes nothing elsewhere; the callback leads
/// back here.
pub(super) async fn authorize(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    _: SameOrigin,
    Path(name): Path<String>,
    Signed(user): Signed,
) -> Response {
    let refused = |why: String| {
        page(&render(
            &state,
            &headers,
            user.username.clone(),
            refusal(format!("{name}: {why}")),
            NewUpstream::default(),
            None,
        ))
    };
    let auth = match oauth::signing_in(&state, &user, &name) {
        Ok(auth) => auth,
        Err(error) => return refused(error.message),
    };
    let (browser, new_cookie) =
        browser::id_or_new(&headers, state.gateway.oauth().served_over_https());
    let url = match auth.begin(Some(&browser)).await {
        Ok(url) => url,
        Err(why) => return refused(why.to_string()),
    };
    tracing::info!(service = %name, "sign-in started from the console");
    let mut shown = render(
        &state,
        &headers,
        user.username.clone(),
        None,
        NewUpstream::default(),
        None,
    );
    shown.sign_in_at = Some(url.clone());
    let mut response = page(&shown);
    // htmx sends the browser on at once; a form posted without script shows the link.
    // (A redirect would be refused: the page's policy lets forms lead only to the gateway.)
    if let Ok(url) = HeaderValue::from_str(&url) {
        response.headers_mut().insert("hx-redirect", url);
    }
    if let Some(cookie) = new_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}
