//! The calls page: the call history, newest first, filtered by upstream, tool, outcome,
//! user and time, a page at a time; and one call's record.

use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Frame, page, session::Signed, timestamp};
use crate::{
    admin::AdminState,
    registry::{CallFilter, CallRecord, now_ms},
};

/// The page's own path.
pub(super) const PAGE: &str = "/ui/calls";

/// Calls a page shows.
const PER_PAGE: usize = 50;

/// The outcomes a call is recorded with.
const OUTCOMES: [&str; 5] = ["ok", "tool_error", "input_required", "cancelled", "error"];

/// How far back the history is shown: the choice's value, its hours (none: all of it).
const PERIODS: [(&str, Option<i64>); 4] = [
    ("", None),
    ("hour", Some(1)),
    ("day", Some(24)),
    ("week", Some(24 * 7)),
];

#[derive(Deserialize, Default)]
pub(super) struct Filters {
    #[serde(default)]
    upstream: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    user: String,
    /// `hour`, `day`, `week`, or blank for all.
    #[serde(default)]
    period: String,
    /// The previous page's last id.
    before: Option<i64>,
}

impl Filters {
    /// The query that keeps these filters, for the next page's link.
    fn query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("upstream", &self.upstream),
                ("tool", &self.tool),
                ("outcome", &self.outcome),
                ("user", &self.user),
                ("period", &self.period),
            ])
            .finish()
    }
}

#[derive(Template)]
#[template(path = "calls.html")]
struct CallsPage {
    frame: Frame,
    filters: Filters,
    upstreams: Vec<String>,
    outcomes: &'static [&'static str],
    calls: Vec<CallRow>,
    next: Option<i64>,
    refused: Option<String>,
}

struct CallRow {
    record: CallRecord,
    at: String,
    took: String,
}

impl CallRow {
    fn of(record: CallRecord) -> Self {
        Self {
            at: timestamp(record.at),
            took: milliseconds(record.duration_us),
            record,
        }
    }
}

pub(super) async fn list(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
    Signed(user): Signed,
) -> Response {
    let frame = Frame::new(&headers, Some(user.username), PAGE);
    let since = PERIODS
        .iter()
        .find(|(name, _)| *name == filters.period)
        .and_then(|(_, hours)| *hours)
        .map(|hours| now_ms() - hours * 3_600_000);
    let given = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
    let found = state
        .registry
        .calls(CallFilter {
            tool: given(&filters.tool),
            upstream: given(&filters.upstream),
            outcome: given(&filters.outcome),
            client: None,
            principal: given(&filters.user),
            since,
            before: filters.before,
            limit: PER_PAGE,
        })
        .await;
    let (calls, next, refused) = match found {
        Ok(found) => (
            found.calls.into_iter().map(CallRow::of).collect(),
            found.next,
            None,
        ),
        Err(error) => (Vec::new(), None, Some(error.to_string())),
    };
    let upstreams = state
        .gateway
        .upstreams()
        .iter()
        .map(|upstream| upstream.name().to_owned())
        .collect();
    page(&CallsPage {
        frame,
        filters,
        upstreams,
        outcomes: &OUTCOMES,
        calls,
        next,
        refused,
    })
}

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    frame: Frame,
    call: CallRow,
}

pub(super) async fn show(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Signed(user): Signed,
) -> Response {
    // The newest call below id + 1 is the call itself, if it is kept.
    let found = state
        .registry
        .calls(CallFilter {
            before: id.checked_add(1),
            limit: 1,
            ..CallFilter::default()
        })
        .await;
    match found.map(|page| page.calls.into_iter().find(|call| call.id == id)) {
        Ok(Some(call)) => page(&CallPage {
            frame: Frame::new(&headers, Some(user.username), PAGE),
            call: CallRow::of(call),
        }),
        Ok(None) => (StatusCode::NOT_FOUND, "no such call is kept").into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// Microseconds as milliseconds, to a tenth.
fn milliseconds(us: i64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(timestamp(1_764_851_924_000), "2025-12-04 12:38:44 UTC");
        assert_eq!(milliseconds(1_234), "1.2 ms");
    }
}
