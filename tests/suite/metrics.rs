//! `/metrics` parses as Prometheus text (the official Python client's classic and
//! OpenMetrics parsers both accept it) and counts what happened: calls by upstream, tool and
//! outcome, their latency histogram, upstream state and restarts, sessions and bytes.

use crate::common;

use std::{io::Write, process::Stdio};

use common::{
    clients_dir, example_bin, fixture_upstream_yaml, http::RawSession, process::ServeProcess,
    python,
};
use serde_json::{Value, json};

/// The samples of the metrics text, as parsed by the Prometheus client.
fn parse(text: &str) -> Vec<Value> {
    let mut parser = std::process::Command::new(python())
        .arg(clients_dir().join("parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the parser");
    parser
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = parser.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parsers refused it: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&output.stdout).unwrap()
}

/// The value of the sample named `name` whose labels include `labels`.
fn value(samples: &[Value], name: &str, labels: Value) -> f64 {
    let matching: Vec<&Value> = samples
        .iter()
        .filter(|sample| {
            sample["name"] == name
                && labels
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(key, value)| &sample["labels"][key] == value)
        })
        .collect();
    assert_eq!(matching.len(), 1, "{name} {labels}: {matching:?}");
    matching[0]["value"].as_f64().unwrap()
}

async fn scrape(gateway: &ServeProcess) -> Vec<Value> {
    let response = common::http::client()
        .get(format!("{}/metrics", gateway.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_parse_and_count_calls() {
    let config = format!(
        "upstreams:\n{}  faulty:\n    command: {:?}\n",
        fixture_upstream_yaml("alpha", "alpha", &["echo", "fail"], ""),
        example_bin("fault_upstream").display().to_string(),
    );
    let gateway = ServeProcess::start(&config);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for n in 0..3 {
        let answer = session.call("alpha__echo", json!({"n": n})).await;
        assert!(answer["result"].is_object(), "{answer}");
    }
    let answer = session.call("alpha__fail", json!({})).await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    for made_up in ["nope", "alpha__nope", "another"] {
        let answer = session.call(made_up, json!({})).await;
        assert!(answer["error"].is_object(), "{answer}");
    }
    let answer = session.call("faulty__crash", json!({})).await;
    assert!(answer["error"].is_object(), "{answer}");
    // Wait for the crashed upstream to be back: its restart is counted by then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while gateway.health()["upstreams"][1]["state"] != "ready" {
        assert!(std::time::Instant::now() < deadline, "{}", gateway.health());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let samples = scrape(&gateway).await;
    let calls = |upstream: &str, tool: &str, outcome: &str| {
        value(
            &samples,
            "mcps_tool_calls_total",
            json!({"upstream": upstream, "tool": tool, "outcome": outcome}),
        )
    };
    assert_eq!(calls("alpha", "echo", "ok"), 3.0);
    assert_eq!(calls("alpha", "fail", "tool_error"), 1.0);
    assert_eq!(calls("faulty", "crash", "error"), 1.0);
    // Made-up names share one series: clients cannot grow the series.
    assert_eq!(calls("", "", "error"), 3.0);
    let echo = json!({"upstream": "alpha", "tool": "echo"});
    assert_eq!(
        value(
            &samples,
            "mcps_tool_call_duration_seconds_count",
            echo.clone()
        ),
        3.0
    );
    let infinite = json!({"upstream": "alpha", "tool": "echo", "le": "+Inf"});
    assert_eq!(
        value(&samples, "mcps_tool_call_duration_seconds_bucket", infinite),
        3.0
    );
    assert!(value(&samples, "mcps_tool_call_duration_seconds_sum", echo) > 0.0);

    assert_eq!(
        value(&samples, "mcps_upstream_up", json!({"upstream": "alpha"})),
        1.0
    );
    let ready = json!({"upstream": "faulty", "state": "ready"});
    assert_eq!(value(&samples, "mcps_upstream_state", ready), 1.0);
    let failed = json!({"upstream": "faulty", "state": "failed"});
    assert_eq!(value(&samples, "mcps_upstream_state", failed), 0.0);
    let restarts = json!({"upstream": "faulty"});
    assert_eq!(
        value(&samples, "mcps_upstream_restarts_total", restarts),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "mcps_upstream_tools",
            json!({"upstream": "alpha"})
        ),
        2.0
    );
    assert_eq!(value(&samples, "mcps_sessions", json!({})), 1.0);
    let received = json!({"transport": "http", "direction": "received"});
    assert!(value(&samples, "mcps_client_bytes_total", received) > 500.0);
    let sent = json!({"transport": "http", "direction": "sent"});
    assert!(value(&samples, "mcps_client_bytes_total", sent) > 500.0);
    // Every call above went into the call history.
    assert_eq!(
        value(&samples, "mcps_calls_not_recorded_total", json!({})),
        0.0
    );
}

#[tokio::test]
async fn metrics_need_a_token_when_auth_is_on() {
    let gateway = ServeProcess::start_in(
        common::process::ConfigDir::new("auth:\n  enabled: true\n"),
        &common::api::admin_env(),
    );
    let url = format!("{}/metrics", gateway.base);
    let anonymous = common::http::client().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let api = common::api::Api::logged_in(&gateway).await;
    let key = api.create_key("prometheus").await;
    let scraped = common::http::client()
        .get(&url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    parse(&scraped.text().await.unwrap());
}
