//! The logs page: the gateway's last log lines (see `logging::recent_lines`), newest last,
//! filtered by words, refreshed in place. Admins only: lines name users and addresses.

use askama::Template;
use axum::{
    extract::Query,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;

use super::{Frame, html, page, session::Signed};
use crate::logging::recent_lines;

/// The page's own path.
pub(super) const PAGE: &str = "/ui/logs";

#[derive(Deserialize, Default)]
pub(super) struct Filter {
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "logs.html")]
struct LogsPage {
    frame: Frame,
    filter: Filter,
    live: Lines,
    allowed: bool,
}

#[derive(Template)]
#[template(path = "log_lines.html")]
struct Lines {
    /// The region's name, in the page's language.
    label: &'static str,
    query: String,
    lines: Vec<String>,
}

impl Lines {
    fn matching(filter: &Filter, label: &'static str) -> Self {
        let words: Vec<String> = filter.q.split_whitespace().map(str::to_lowercase).collect();
        Self {
            label,
            query: url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &filter.q)
                .finish(),
            lines: recent_lines()
                .into_iter()
                .filter(|line| {
                    let line = line.to_lowercase();
                    words.iter().all(|word| line.contains(word))
                })
                .collect(),
        }
    }
}

pub(super) async fn list(
    headers: HeaderMap,
    Query(filter): Query<Filter>,
    Signed(user): Signed,
) -> Response {
    let allowed = user.is_admin;
    let frame = Frame::new(&headers, Some(user.username), PAGE);
    let live = if allowed {
        Lines::matching(&filter, frame.t.logs_page)
    } else {
        Lines {
            label: frame.t.logs_page,
            query: String::new(),
            lines: Vec::new(),
        }
    };
    page(&LogsPage {
        frame,
        filter,
        live,
        allowed,
    })
}

pub(super) async fn live(
    headers: HeaderMap,
    Query(filter): Query<Filter>,
    Signed(user): Signed,
) -> Response {
    if !user.is_admin {
        return html(StatusCode::FORBIDDEN, Ok(String::new()));
    }
    let label = Frame::new(&headers, None, PAGE).t.logs_page;
    html(StatusCode::OK, Lines::matching(&filter, label).render())
}
