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
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Frame, SameOrigin, html, page, session::Signed, text::Text};
use crate::{
    admin::{
        AdminState,
        services::{self, Service},
    },
    config::UpstreamConfig,
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

/// The add and edit form. Lists are one item a line; `env` lines are `NAME=value`,
/// `headers` lines `Name: value`.
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
    /// The form filled with an entry as the API shows it (secrets redacted: sent back
    /// unchanged, they keep their values).
    fn of(name: &str, shown: &UpstreamConfig) -> Self {
        let lines = |pairs: &indexmap::IndexMap<String, String>, separator: &str| {
            pairs
                .iter()
                .map(|(name, value)| format!("{name}{separator}{value}"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        Self {
            name: name.to_owned(),
            command: shown.command.clone().unwrap_or_default(),
            args: shown.args.join("\n"),
            env: lines(&shown.env, "="),
            url: shown.url.clone().unwrap_or_default(),
            headers: lines(&shown.headers, ": "),
            prefix: shown.prefix.clone().unwrap_or_default(),
            disabled: shown.disabled.then(|| "on".to_owned()),
        }
    }

    /// The merge patch that makes `current` what the form says: a blank field removes its
    /// key, and an `env` or `headers` line left out removes that variable or header. What
    /// the form does not show (timeouts, OAuth, isolation...) stays as it is.
    fn patch(&self, current: &UpstreamConfig) -> Result<Map<String, Value>, String> {
        let mut patch = self.entry()?;
        for key in ["command", "args", "env", "url", "headers", "prefix"] {
            patch.entry(key).or_insert(Value::Null);
        }
        for (key, kept) in [("env", &current.env), ("headers", &current.headers)] {
            if let Some(Value::Object(given)) = patch.get_mut(key) {
                for name in kept.keys() {
                    given.entry(name.as_str()).or_insert(Value::Null);
                }
            }
        }
        Ok(patch)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edited_form_keeps_redacted_secrets_and_removes_what_was_taken_out() {
        let current: UpstreamConfig = serde_json::from_value(json!({
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer kept", "X-Old": "1"},
            "prefix": "ex_",
            "call_timeout_secs": 9.0,
        }))
        .unwrap();
        let mut form = NewUpstream::of("ex", &current.redacted());
        assert_eq!(form.headers, "Authorization: ********\nX-Old: ********");
        form.headers = "Authorization: ********\nX-New: 2".into();
        form.prefix = String::new();
        form.disabled = Some("on".into());

        let mut entry = serde_json::to_value(&current).unwrap();
        let mut patch = form.patch(&current).unwrap();
        assert_eq!(patch.remove("name"), Some(json!("ex")));
        services::merge_patch(&mut entry, Value::Object(patch));
        let edited: UpstreamConfig = serde_json::from_value(entry).unwrap();
        assert_eq!(
            edited.headers.into_iter().collect::<Vec<_>>(),
            [
                ("Authorization".to_owned(), "Bearer kept".to_owned()),
                ("X-New".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(edited.prefix, None, "a blank field removes its key");
        assert!(edited.disabled);
        assert_eq!(edited.url.as_deref(), Some("https://mcp.example.com/mcp"));
        assert_eq!(
            edited.call_timeout_secs,
            Some(9.0),
            "what the form does not show stays"
        );
    }

    #[test]
    fn a_form_that_switches_to_a_command_drops_the_url_and_its_headers() {
        let current: UpstreamConfig = serde_json::from_value(json!({
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer x"},
        }))
        .unwrap();
        let form = NewUpstream {
            name: "ex".into(),
            command: "mcps".into(),
            args: "hello".into(),
            ..NewUpstream::default()
        };
        let patch = form.patch(&current).unwrap();
        assert_eq!(patch["url"], Value::Null);
        assert_eq!(patch["headers"], Value::Null);
        assert_eq!(patch["args"], json!(["hello"]));
    }
}
