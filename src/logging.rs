//! Where log lines go: always stderr, and with `logging.dir` also rotating files, in the
//! same format (`text` or `json`); the last ones also stay in memory, as text, for the web
//! console ([`recent_lines`]). `RUST_LOG` overrides `logging.level`.
//!
//! One filter, `logging.level`, stands in front of every output, and a reload of
//! `proxy.yaml` can swap it ([`set_level`]) while the gateway runs. Its handle is
//! process-wide, like the `tracing` dispatcher it belongs to.
//!
//! Files are written by a background thread so a slow disk never stalls the gateway; when
//! it falls far behind, lines are dropped rather than calls delayed. Built with the `otel`
//! feature, spans are also exported to an OpenTelemetry collector (`logging/otel.rs`).

#[cfg(feature = "otel")]
mod otel;
mod recent;

pub use recent::recent_lines;

use std::{path::Path, sync::OnceLock};

use tracing_appender::{non_blocking::WorkerGuard, rolling};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    field::RecordFields,
    fmt::{
        self, FormatFields,
        format::{DefaultFields, Writer},
    },
    layer::{Layered, SubscriberExt},
    reload,
};

use crate::config::{LogFormat, LogRotation, LoggingConfig};

/// Keeps the file writer running; dropping it writes what is queued.
#[must_use = "log lines still queued for the file are lost when this is dropped"]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
    #[cfg(feature = "otel")]
    spans: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        // Sends the spans still batched.
        #[cfg(feature = "otel")]
        if let Some(provider) = self.spans.take() {
            let _ = provider.shutdown();
        }
    }
}

/// The subscriber every output is layered on: the registry behind the level filter.
type Filtered = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type BoxedLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// Swaps the level filter; set once, by [`init`].
static LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Puts `level` (a validated `tracing` filter) in force for every output. The error says
/// why it is not: `RUST_LOG` overrides it, or no logger of ours is installed.
pub fn set_level(level: &str) -> Result<(), String> {
    if env_filter().is_some() {
        return Err("RUST_LOG is set and overrides logging.level".into());
    }
    let handle = LEVEL
        .get()
        .ok_or("this process installed no logger of ours")?;
    let filter = EnvFilter::try_new(level).map_err(|error| error.to_string())?;
    handle.reload(filter).map_err(|error| error.to_string())
}

/// `RUST_LOG`, when it says anything.
fn env_filter() -> Option<String> {
    std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|filter| !filter.trim().is_empty())
}

/// Installs the process's log subscriber. Fails when the log directory cannot be made.
pub fn init(config: &LoggingConfig, base_dir: &Path) -> Result<LogGuard, String> {
    let filter = env_filter()
        .and_then(|filter| EnvFilter::try_new(filter).ok())
        .or_else(|| EnvFilter::try_new(&config.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, level) = reload::Layer::new(filter);
    let mut layers: Vec<BoxedLayer> = vec![
        layer::<STDERR, _>(config.format, std::io::stderr),
        layer::<RECENT, _>(LogFormat::Text, recent::Recent::installed()),
    ];
    let mut guard = None;
    if let Some(dir) = config.dir(base_dir) {
        let rotation = match config.rotation {
            LogRotation::Daily => rolling::Rotation::DAILY,
            LogRotation::Hourly => rolling::Rotation::HOURLY,
            LogRotation::Never => rolling::Rotation::NEVER,
        };
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("cannot create log directory {}: {error}", dir.display()))?;
        let appender = rolling::RollingFileAppender::builder()
            .rotation(rotation)
            .filename_prefix("mcps")
            .filename_suffix("log")
            .max_log_files(config.max_files.max(1))
            .build(&dir)
            .map_err(|error| format!("cannot write logs in {}: {error}", dir.display()))?;
        let (writer, file_guard) = tracing_appender::non_blocking(appender);
        layers.push(layer::<FILES, _>(config.format, writer));
        guard = Some(file_guard);
    }
    let exporting = !config.otlp_endpoint.is_empty()
        || std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    #[cfg(feature = "otel")]
    let spans = if exporting {
        let (layer, provider) = otel::layer(&config.otlp_endpoint)?;
        layers.push(layer);
        Some(provider)
    } else {
        None
    };
    let subscriber = tracing_subscriber::registry().with(filter).with(layers);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|error| format!("cannot install the logger: {error}"))?;
    let _ = LEVEL.set(level);
    if exporting && cfg!(not(feature = "otel")) {
        tracing::warn!(
            "an OpenTelemetry endpoint is set, but this build has no `otel` feature: spans are not exported"
        );
    }
    Ok(LogGuard {
        _file: guard,
        #[cfg(feature = "otel")]
        spans,
    })
}

/// The outputs, each with a type of its own for the text of a span's fields
/// ([`OutputFields`]).
const STDERR: u8 = 0;
const RECENT: u8 = 1;
const FILES: u8 = 2;

/// Output `OUTPUT` in `format`, writing to `writer`.
fn layer<const OUTPUT: u8, W>(format: LogFormat, writer: W) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let text = fmt::layer().with_writer(writer).with_ansi(false);
    match format {
        LogFormat::Text => text.fmt_fields(OutputFields::<OUTPUT>).boxed(),
        // JSON fields recorded later replace their key rather than add to the text.
        LogFormat::Json => text.json().boxed(),
    }
}

/// How text output `OUTPUT` writes a span's fields: as `tracing-subscriber` does. Outputs
/// whose field formatters are of one type share the text of a span's fields, and each adds
/// a field recorded later (`Span::record`) to it again, so that a call's `upstream` showed
/// twice; one type per output keeps one text each (tracing-subscriber's issue 1372).
struct OutputFields<const OUTPUT: u8>;

impl<'w, const OUTPUT: u8> FormatFields<'w> for OutputFields<OUTPUT> {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        DefaultFields::new().format_fields(writer, fields)
    }
}
