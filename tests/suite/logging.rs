//! Structured logs: with `logging.format: json` every line on stderr and in the rotating
//! file under `logging.dir` is a JSON object, and what is logged on a call's way carries the
//! call's span: the tool and the upstream it was routed to.

use crate::common;

use std::time::{Duration, Instant};

use common::{example_bin, fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::{Value, json};

/// Every line of the files in `dir` whose name starts with `mcps`, parsed.
fn file_lines(dir: &std::path::Path) -> Vec<Value> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("mcps") || !name.ends_with(".log") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for line in text.lines() {
            let parsed = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{name}: not JSON ({error}): {line}"));
            lines.push(parsed);
        }
    }
    lines
}

#[tokio::test]
async fn json_logs_reach_stderr_and_the_rotating_file_with_call_spans() {
    let config = format!(
        "logging:\n  format: json\n  dir: logs\n  rotation: daily\nupstreams:\n{}  faulty:\n    command: {:?}\n",
        fixture_upstream_yaml("alpha", "alpha", &["echo"], ""),
        example_bin("fault_upstream").display().to_string(),
    );
    // With the first password given, nothing but log lines reaches stderr (the generated
    // one is printed once, outside the log, so it never lands in a log file).
    let gateway = ServeProcess::start_in(
        common::process::ConfigDir::new(&config),
        &common::api::admin_env(),
    );
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let answer = session.call("faulty__crash", json!({})).await;
    assert!(answer["error"].is_object(), "{answer}");

    let dir = gateway.config.dir.path().join("logs");
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let found = file_lines(&dir).into_iter().find(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("call failed"))
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no call failure in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed["span"]["name"], "tool_call", "{failed}");
    assert_eq!(failed["span"]["tool"], "faulty__crash", "{failed}");
    assert_eq!(failed["span"]["upstream"], "faulty", "{failed}");
    assert_eq!(failed["level"], "INFO", "{failed}");

    // stderr is read by a thread of its own: wait for the same line there.
    gateway.wait_for_log("call failed").await;
    for line in gateway.log().lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|error| panic!("stderr line not JSON ({error}): {line}"));
    }
}
