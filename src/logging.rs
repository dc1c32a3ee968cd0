//! Where log lines go: always stderr, and with `logging.dir` also rotating files, in the
//! same format (`text` or `json`). `RUST_LOG` overrides `logging.level`.
//!
//! Files are written by a background thread so a slow disk never stalls the gateway; when
//! it falls far behind, lines are dropped rather than calls delayed. Built with the `otel`
//! feature, spans are also exported to an OpenTelemetry collector ([`otel`]).

#[cfg(feature = "otel")]
mod otel;

use std::path::Path;

use tracing_appender::{non_blocking::WorkerGuard, rolling};
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt, layer::SubscriberExt};

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

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the process's log subscriber. Fails when the log directory cannot be made.
pub fn init(config: &LoggingConfig, base_dir: &Path) -> Result<LogGuard, String> {
    let filter = || {
        EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new(&config.level))
            .unwrap_or_else(|_| EnvFilter::new("info"))
    };
    let mut layers: Vec<BoxedLayer> = vec![layer(config.format, std::io::stderr, filter())];
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
        layers.push(layer(config.format, writer, filter()));
        guard = Some(file_guard);
    }
    let exporting = !config.otlp_endpoint.is_empty()
        || std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
    #[cfg(feature = "otel")]
    let spans = if exporting {
        let (layer, provider) = otel::layer(&config.otlp_endpoint, filter())?;
        layers.push(layer);
        Some(provider)
    } else {
        None
    };
    let subscriber = tracing_subscriber::registry().with(layers);
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|error| format!("cannot install the logger: {error}"))?;
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

/// One output in `format`, writing to `writer`, filtered by `filter`.
fn layer<W>(format: LogFormat, writer: W, filter: EnvFilter) -> BoxedLayer
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let text = fmt::layer().with_writer(writer).with_ansi(false);
    match format {
        LogFormat::Text => text.with_filter(filter).boxed(),
        LogFormat::Json => text.json().with_filter(filter).boxed(),
    }
}
