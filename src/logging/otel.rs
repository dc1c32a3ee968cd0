//! OpenTelemetry export (the `otel` feature): every span, each `tools/call`'s `tool_call`
//! with its tool and upstream among them, is batched and sent over OTLP/HTTP (JSON) to a
//! collector, from the SDK's own thread.

use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing_subscriber::Layer;

use super::BoxedLayer;

/// The path OTLP/HTTP collectors take traces on.
const TRACES_PATH: &str = "/v1/traces";

/// A layer exporting spans to `endpoint` (a collector's base URL; empty: the standard
/// `OTEL_EXPORTER_OTLP_*` variables decide), and the provider that flushes on shutdown.
pub fn layer(endpoint: &str) -> Result<(BoxedLayer, SdkTracerProvider), String> {
    // reqwest is built without a TLS provider of its own (an https:// collector needs one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson);
    if !endpoint.is_empty() {
        let base = endpoint.trim_end_matches('/');
        let traces = if base.ends_with(TRACES_PATH) {
            base.to_owned()
        } else {
            format!("{base}{TRACES_PATH}")
        };
        exporter = exporter.with_endpoint(traces);
    }
    let exporter = exporter
        .build()
        .map_err(|error| format!("cannot export to OpenTelemetry: {error}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("mcps")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("mcps");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Ok((layer, provider))
}
