//! The upstreams page: every upstream with its state (kept current in place), restart for
//! any, enable, disable and delete for those added through the API (proxy.yaml's are
//! changed in proxy.yaml), and a form that adds one, checked by the same rules as the API's
//! `POST /api/v1/mcp/services` (the config file's schema, the spawn allowlist, the egress
//! policy).

use std::sync::Arc;

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Frame, SameOrigin, html, page, session::Signed, text::Text};
use crate::admin::{
    AdminState,
    services::{self, Service},
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
    /// The add form's fields as the user left them (after a refusal).
    form: NewUpstream,
    /// The programs an upstream added here may run.
    allowlist: Vec<String>,
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
            Row {
                state_label: t.state(service.state),
                target,
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
) -> UpstreamsPage {
    let frame = Frame::new(headers, Some(user), PAGE);
    UpstreamsPage {
        upstreams: rows(state, frame.t),
        frame,
        notice,
        form,
        allowlist: state.config.security.spawn_allowlist.clone(),
    }
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

/// The add form. Lists are one item a line; `env` lines are `NAME=value`, `headers` lines
/// `Name: value`.
#[derive(Deserialize, Default)]
pub(super) struct NewUpstream {
    #[serde(default)]
    name: String,
    #[serde(default)]
    command: String,
    #[serde(default)]
    args: String,
    #[serde(default)]
    env: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    headers: String,
    #[serde(default)]
    prefix: String,
    /// A checkbox: present when ticked.
    disabled: Option<String>,
}

impl NewUpstream {
    /// The entry as the API takes it: `{"name": …, <proxy.yaml fields>}`.
    fn entry(&self) -> Result<Map<String, Value>, String> {
        let mut entry = Map::new();
        entry.insert("name".into(), json!(self.name.trim()));
        if let Some(command) = filled(&self.command) {
            entry.insert("command".into(), json!(command));
            let args: Vec<&str> = self
                .args
                .lines()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect();
            entry.insert("args".into(), json!(args));
            entry.insert("env".into(), Value::Object(pairs(&self.env, '=', "env")?));
        }
        if let Some(url) = filled(&self.url) {
            entry.insert("url".into(), json!(url));
            entry.insert(
                "headers".into(),
                Value::Object(pairs(&self.headers, ':', "headers")?),
            );
        }
        if let Some(prefix) = filled(&self.prefix) {
            entry.insert("prefix".into(), json!(prefix));
        }
        entry.insert("disabled".into(), json!(self.disabled.is_some()));
        Ok(entry)
    }
}

/// A field's text, trimmed, unless blank.
fn filled(field: &str) -> Option<&str> {
    Some(field.trim()).filter(|text| !text.is_empty())
}

/// `NAME<separator>value` lines as an object.
fn pairs(lines: &str, separator: char, field: &str) -> Result<Map<String, Value>, String> {
    let mut pairs = Map::new();
    for line in lines.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let Some((name, value)) = line.split_once(separator) else {
            return Err(format!(
                "{field}: {line:?} is not of the form NAME{separator}value"
            ));
        };
        pairs.insert(name.trim().to_owned(), json!(value.trim()));
    }
    Ok(pairs)
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
        Err(why) => {
            let notice = Some(Notice {
                refused: true,
                text: why,
            });
            page(&render(&state, &headers, user.username, notice, form))
        }
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
        _ => return (StatusCode::NOT_FOUND, "no such action").into_response(),
    };
    match done {
        Ok(()) => Redirect::to(&format!("{PAGE}?done={name}")).into_response(),
        Err(error) => {
            let notice = Some(Notice {
                refused: true,
                text: format!("{name}: {}", error.message),
            });
            page(&render(
                &state,
                &headers,
                user.username,
                notice,
                NewUpstream::default(),
            ))
        }
    }
}
