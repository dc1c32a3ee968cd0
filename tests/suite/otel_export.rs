//! With the `otel` feature (`cargo test --features otel --test suite otel_export::`), spans reach an
//! OpenTelemetry collector over OTLP/HTTP: a `tools/call` arrives as a `tool_call` span
//! carrying its tool and upstream, from service `mcps`. The collector here is a stand-in
//! that records what is posted to `/v1/traces`.
#![cfg(feature = "otel")]

use crate::common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, extract::State, routing::post};
use common::{
    fixture_upstream_yaml,
    http::RawSession,
    process::{ConfigDir, ServeProcess},
};
use serde_json::{Value, json};

type Received = Arc<Mutex<Vec<Value>>>;

async fn collect(State(received): State<Received>, body: String) -> &'static str {
    received
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).expect("OTLP/JSON"));
    "{}"
}

/// The spans named `name` among everything received.
fn spans(received: &Received, name: &str) -> Vec<(Value, Value)> {
    let mut found = Vec::new();
    for export in received.lock().unwrap().iter() {
        for resource in export["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    if span["name"] == name {
                        found.push((resource["resource"].clone(), span.clone()));
                    }
                }
            }
        }
    }
    found
}

/// The string value of attribute `key`.
fn attribute<'a>(attributes: &'a Value, key: &str) -> Option<&'a str> {
    attributes
        .as_array()?
        .iter()
        .find(|attribute| attribute["key"] == key)?["value"]["stringValue"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_exported_as_spans() {
    let received = Received::default();
    let collector = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = collector.local_addr().unwrap();
    let app = Router::new()
        .route("/v1/traces", post(collect))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(collector, app).await });

    let config = format!(
        "logging:\n  otlp_endpoint: http://{address}\nupstreams:\n{}",
        fixture_upstream_yaml("alpha", "alpha", &["echo"], "")
    );
    // Batches go out every 200 ms instead of every 5 s.
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&config),
        &[("OTEL_BSP_SCHEDULE_DELAY", "200")],
    );
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let answer = session.call("alpha__echo", json!({})).await;
    assert!(answer["result"].is_object(), "{answer}");

    let deadline = Instant::now() + Duration::from_secs(20);
    let (resource, span) = loop {
        if let Some(found) = spans(&received, "tool_call").pop() {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no tool_call span: {:?}",
            received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        attribute(&span["attributes"], "tool"),
        Some("alpha__echo"),
        "{span}"
    );
    assert_eq!(
        attribute(&span["attributes"], "upstream"),
        Some("alpha"),
        "{span}"
    );
    assert_eq!(
        attribute(&resource["attributes"], "service.name"),
        Some("mcps"),
        "{resource}"
    );
    drop(gateway);
}
