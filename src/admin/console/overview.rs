//! The overview: every upstream's state, and the gateway's sessions and calls, refreshed in
//! place every two seconds (the page asks for `/ui/overview/live`, the part that changes).

use std::{sync::Arc, time::Duration};

use askama::Template;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};

use super::{Frame, HOME, html, session::Signed, text::Text};
use crate::{admin::AdminState, metrics::metrics};

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    live: Live,
}

/// The part of the overview that is refreshed.
#[derive(Template)]
#[template(path = "overview_live.html")]
struct Live {
    t: &'static Text,
    version: &'static str,
    uptime: String,
    sessions: usize,
    calls: i64,
    errors: i64,
    /// The last minute's calls per second, share failed and durations (p50 · p95 · p99), as
    /// shown.
    per_second: String,
    failure_rate: String,
    latency: String,
    upstreams: Vec<UpstreamRow>,
}

struct UpstreamRow {
    name: String,
    /// `Phase::as_str`, for the row's style.
    state: &'static str,
    /// The state in the page's language.
    state_label: &'static str,
    /// Whether proxy.yaml has it (read-only here) or the API added it.
    from_config: bool,
    transport: &'static str,
    protocol: Option<String>,
    tools: usize,
    restarts: u64,
    last_error: Option<String>,
    stderr_tail: Vec<String>,
}

pub(super) async fn page(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Signed(user): Signed,
) -> Response {
    let frame = Frame::new(&headers, Some(user.username), HOME);
    match live(&state, frame.t).await {
        Ok(live) => super::page(&OverviewPage { frame, live }),
        Err(response) => response,
    }
}

/// `/ui/overview/live`: the fragment the page replaces its own with.
pub(super) async fn live_fragment(
    State(state): State<Arc<AdminState>>,
    headers: HeaderMap,
    Signed(_): Signed,
) -> Response {
    let frame = Frame::new(&headers, None, HOME);
    match live(&state, frame.t).await {
        Ok(live) => html(StatusCode::OK, live.render()),
        Err(response) => response,
    }
}

async fn live(state: &AdminState, t: &'static Text) -> Result<Live, Response> {
    let gateway = &state.gateway;
    let catalog = gateway.catalog();
    let upstreams = gateway
        .upstreams()
        .iter()
        .map(|upstream| {
            let current = upstream.state();
            let phase = current.phase.as_str();
            UpstreamRow {
                name: upstream.name().to_owned(),
                state: phase,
                state_label: t.state(phase),
                from_config: state.config.upstreams.contains_key(upstream.name()),
                transport: upstream.config().transport_kind().as_str(),
                protocol: current.protocol_version.as_ref().map(ToString::to_string),
                tools: catalog.tool_count(upstream),
                restarts: metrics().restarts(upstream.name()),
                last_error: current
                    .phase
                    .failure()
                    .map(str::to_owned)
                    .or_else(|| upstream.last_error()),
                stderr_tail: upstream.stderr_tail(),
            }
        })
        .collect();
    let (calls, errors) = state.registry.call_counts().await.map_err(|error| {
        tracing::warn!(%error, "the console's overview cannot count calls");
        html(
            StatusCode::SERVICE_UNAVAILABLE,
            Ok("the registry cannot be read".to_owned()),
        )
    })?;
    let minute = metrics().last_minute();
    Ok(Live {
        t,
        per_second: format!("{:.2}", minute.per_second()),
        failure_rate: format!("{:.1} %", minute.failure_rate() * 100.0),
        latency: minute.latency.map_or_else(
            || "–".to_owned(),
            |latency| {
                format!(
                    "{} · {} · {}",
                    millis(latency.p50),
                    millis(latency.p95),
                    millis(latency.p99)
                )
            },
        ),
        version: env!("CARGO_PKG_VERSION"),
        uptime: duration(state.started.elapsed()),
        sessions: gateway.session_count(),
        calls,
        errors,
        upstreams,
    })
}

/// `3 d 4 h`, `5 h 6 min`, `7 min 8 s` or `9 s`.
fn duration(took: Duration) -> String {
    let secs = took.as_secs();
    let (days, hours, minutes) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs} s"),
        (0, 0, _) => format!("{minutes} min {} s", secs % 60),
        (0, _, _) => format!("{hours} h {minutes} min"),
        _ => format!("{days} d {hours} h"),
    }
}

/// A duration in milliseconds, with the digits that matter at its size.
fn millis(took: Duration) -> String {
    let millis = took.as_secs_f64() * 1000.0;
    if millis < 10.0 {
        format!("{millis:.2} ms")
    } else {
        format!("{millis:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(Duration::from_secs(9)), "9 s");
        assert_eq!(duration(Duration::from_secs(7 * 60 + 8)), "7 min 8 s");
        assert_eq!(
            duration(Duration::from_secs(5 * 3600 + 6 * 60)),
            "5 h 6 min"
        );
        assert_eq!(
            duration(Duration::from_secs(3 * 86_400 + 4 * 3600)),
            "3 d 4 h"
        );
    }
}
