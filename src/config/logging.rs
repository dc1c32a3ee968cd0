//! `logging:` where log lines go and in what shape.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Log output: always stderr (stdout belongs to MCP in `mcps stdio`), and rotating files in
/// `dir` when it is set.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// A `tracing` filter such as `info` or `mcps=debug,rmcp=warn`.
    pub level: String,
    /// `text` (one readable line per event) or `json` (one object per line, span fields
    /// included), on stderr and in the files alike.
    pub format: LogFormat,
    /// A directory for log files, relative to the config file; empty writes none.
    pub dir: String,
    /// When a new file is started: `daily`, `hourly` or `never`.
    pub rotation: LogRotation,
    /// Rotated files kept; older ones are deleted.
    pub max_files: usize,
    /// An OpenTelemetry collector's OTLP/HTTP base URL (e.g. `http://collector:4318`) to
    /// export spans to; builds with the `otel` feature only. Empty: the standard
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` variable, when set.
    pub otlp_endpoint: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info,rmcp=warn".into(),
            format: LogFormat::Text,
            dir: String::new(),
            rotation: LogRotation::Daily,
            max_files: 7,
            otlp_endpoint: String::new(),
        }
    }
}

impl LoggingConfig {
    /// The log directory, resolved against `base_dir`, when there is one.
    pub fn dir(&self, base_dir: &Path) -> Option<PathBuf> {
        (!self.dir.is_empty()).then(|| super::resolve(base_dir, &self.dir))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    Daily,
    Hourly,
    Never,
}
