//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Counters and histograms are updated where things happen (a call ends, an upstream
//! restarts, bytes cross a client transport); gauges of state (upstreams, sessions, the
//! catalog) are read from the gateway at scrape time, so they can never drift. The registry
//! is process-wide, like the `tracing` dispatcher: the transports that count bytes are
//! created in many places, and threading a handle through each would buy nothing.

mod last_minute;

use std::{
    sync::{LazyLock, Mutex},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use self::last_minute::LastMinute;
pub use self::last_minute::MinuteOfCalls;
use crate::sync::lock;

/// The `Content-Type` of [`Metrics::render`]'s output: OpenMetrics, the text format
/// Prometheus negotiates first (it reads the classic text format's parsers too).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    upstream: String,
    tool: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    upstream: String,
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    upstream: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    transport: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    method: &'static str,
    outcome: &'static str,
}

/// A client transport, for byte counts.
#[derive(Debug, Clone, Copy)]
pub enum ClientTransport {
    Http,
    WebSocket,
    Stdio,
}

/// The byte counters of one client transport.
#[derive(Debug, Clone)]
pub struct ByteCounters {
    pub received: Counter,
    pub sent: Counter,
}

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    call_duration: Family<ToolLabels, Histogram>,
    restarts: Family<UpstreamLabels, Counter>,
    upstream_up: Family<UpstreamLabels, Gauge>,
    upstream_state: Family<StateLabels, Gauge>,
    upstream_tools: Family<UpstreamLabels, Gauge>,
    sessions: Gauge,
    /// Session-era sessions opened on another gateway on the registry and continued here.
    pub sessions_continued: Counter,
    /// Copies of sessions taken in from the registry, given up once quiet.
    pub session_copies_given_up: Counter,
    /// Sessions' resource subscriptions taken over from a gateway that stopped holding them.
    pub subscriptions_taken_over: Counter,
    /// Calls the call history did not keep: its queue was full, or the database refused them.
    pub calls_not_recorded: Counter,
    tools: Gauge,
    cache_lookups: Family<CacheLabels, Counter>,
    bytes: [ByteCounters; 3],
    /// Scrapes rebuild the state gauges; one at a time, so none sees another's half.
    scrape: Mutex<()>,
    last_minute: LastMinute,
}

/// The upstream label of a call that reached no upstream (an unknown tool, say); its tool
/// label is this too, so names clients make up cannot grow the series without bound.
const NONE: &str = "";

/// Every phase an upstream can be in, for the state gauge.
const PHASES: [&str; 7] = [
    "starting",
    "ready",
    "degraded",
    "failed",
    "disabled",
    "stopped",
    "needs_authorization",
];

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("mcps");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "tools/call requests by upstream, tool and outcome (ok, tool_error, input_required, cancelled, error)",
            calls.clone(),
        );
        let call_duration = Family::<ToolLabels, Histogram>::new_with_constructor(|| {
            // 1 ms to about a minute, doubling.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.001, 2.0, 17,
            ))
        });
        registry.register(
            "tool_call_duration_seconds",
            "How long tools/call requests took, by upstream and tool",
            call_duration.clone(),
        );
        let restarts = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_restarts",
            "Restarts of an upstream after it failed",
            restarts.clone(),
        );
        let upstream_up = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "upstream_up",
            "1 when the upstream is ready to serve, else 0",
            upstream_up.clone(),
        );
        let upstream_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "upstream_state",
            "1 for the state the upstream is in, 0 for the others",
            upstream_state.clone(),
        );
        let upstream_tools = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "upstream_tools",
            "Tools the upstream contributes to the catalog",
            upstream_tools.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "sessions",
            "Open session-era client sessions (HTTP, WebSocket and stdio)",
            sessions.clone(),
        );
        let sessions_continued = Counter::default();
        registry.register(
            "sessions_continued",
            "Streamable HTTP sessions opened on another gateway on the same registry (or on this one before a restart) and continued here",
            sessions_continued.clone(),
        );
        let session_copies_given_up = Counter::default();
        registry.register(
            "session_copies_given_up",
            "Copies of sessions taken in from the registry that this gateway gave up once asleep (the registry keeps the session; its next request here takes it in again)",
            session_copies_given_up.clone(),
        );
        let subscriptions_taken_over = Counter::default();
        registry.register(
            "subscriptions_taken_over",
            "Sessions' resource subscriptions this gateway took over from a gateway on the same registry that stopped holding them (killed, stopped, or its copy of the session closed)",
            subscriptions_taken_over.clone(),
        );
        let calls_not_recorded = Counter::default();
        registry.register(
            "calls_not_recorded",
            "tools/call requests the call history did not keep: more came than its queue holds, or the database refused them past its retries",
            calls_not_recorded.clone(),
        );
        let tools = Gauge::default();
        registry.register("catalog_tools", "Tools in the catalog", tools.clone());
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Lists and resources/read answers asked of the gateway's cache, by method and outcome: hit (served as kept), miss (resources/read: asked of the upstream; a list: stale by its ttlMs, so listed again first)",
            cache_lookups.clone(),
        );
        let bytes = Family::<BytesLabels, Counter>::default();
        registry.register(
            "client_bytes",
            "Bytes of MCP messages received from and sent to clients, by transport",
            bytes.clone(),
        );
        let counters = |transport: &'static str| ByteCounters {
            received: bytes.get_or_create_owned(&BytesLabels {
                transport,
                direction: "received",
            }),
            sent: bytes.get_or_create_owned(&BytesLabels {
                transport,
                direction: "sent",
            }),
        };
        Self {
            bytes: [counters("http"), counters("websocket"), counters("stdio")],
            registry,
            calls,
            call_duration,
            restarts,
            upstream_up,
            upstream_state,
            upstream_tools,
            sessions,
            sessions_continued,
            session_copies_given_up,
            subscriptions_taken_over,
            calls_not_recorded,
            tools,
            cache_lookups,
            scrape: Mutex::new(()),
            last_minute: LastMinute::new(),
        }
    }

    /// The calls of the last minute.
    pub fn last_minute(&self) -> MinuteOfCalls {
        self.last_minute.read()
    }

    /// Counts one `tools/call`. `upstream` is `None` when it reached none.
    pub fn call(&self, upstream: Option<&str>, tool: &str, outcome: &'static str, took: Duration) {
        self.last_minute.record(outcome != "ok", took);
        let (upstream, tool) = match upstream {
            Some(upstream) => (upstream.to_owned(), tool.to_owned()),
            None => (NONE.to_owned(), NONE.to_owned()),
        };
        let labels = ToolLabels { upstream, tool };
        self.call_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.calls
            .get_or_create(&CallLabels {
                upstream: labels.upstream,
                tool: labels.tool,
                outcome,
            })
            .inc();
    }

    /// Counts one lookup of `method`'s answer in the gateway's cache.
    pub fn cache_lookup(&self, method: &'static str, hit: bool) {
        let outcome = if hit { "hit" } else { "miss" };
        self.cache_lookups
            .get_or_create(&CacheLabels { method, outcome })
            .inc();
    }

    /// Counts a restart of `upstream` after a failure.
    pub fn restarted(&self, upstream: &str) {
        self.restarts
            .get_or_create(&UpstreamLabels {
                upstream: upstream.to_owned(),
            })
            .inc();
    }

    /// The restarts of `upstream` after a failure, since the gateway started.
    pub fn restarts(&self, upstream: &str) -> u64 {
        self.restarts
            .get(&UpstreamLabels {
                upstream: upstream.to_owned(),
            })
            .map_or(0, |counter| counter.get())
    }

    /// The byte counters of `transport`.
    pub fn bytes(&self, transport: ClientTransport) -> &ByteCounters {
        &self.bytes[transport as usize]
    }

    /// Every metric in the text exposition format, with the state gauges set from `state`
    /// (read by the gateway at this scrape).
    pub fn render(&self, state: &StateGauges) -> String {
        let _one_scrape = lock(&self.scrape);
        self.set_state(state);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    fn set_state(&self, state: &StateGauges) {
        // Upstreams come and go with reloads: only the present ones have series.
        self.upstream_up.clear();
        self.upstream_state.clear();
        self.upstream_tools.clear();
        for upstream in &state.upstreams {
            let labels = UpstreamLabels {
                upstream: upstream.name.clone(),
            };
            self.upstream_up
                .get_or_create(&labels)
                .set(i64::from(upstream.phase == "ready"));
            self.upstream_tools
                .get_or_create(&labels)
                .set(upstream.tools as i64);
            for phase in PHASES {
                self.upstream_state
                    .get_or_create(&StateLabels {
                        upstream: upstream.name.clone(),
                        state: phase,
                    })
                    .set(i64::from(upstream.phase == phase));
            }
        }
        self.sessions.set(state.sessions as i64);
        self.tools.set(state.tools as i64);
    }
}

/// What the gauges show: the gateway's state at one scrape. Metrics are a leaf every layer
/// counts into, so the gateway hands its state over rather than being read from here.
#[derive(Debug, Default)]
pub struct StateGauges {
    pub upstreams: Vec<UpstreamGauge>,
    /// Client sessions open.
    pub sessions: usize,
    /// Tools in the catalog.
    pub tools: usize,
}

/// One upstream's gauges.
#[derive(Debug)]
pub struct UpstreamGauge {
    pub name: String,
    /// Its phase, as the status API names it (one of `PHASES`).
    pub phase: &'static str,
    /// Its tools in the catalog.
    pub tools: usize,
}
