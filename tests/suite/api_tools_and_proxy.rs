//! `/api/v1/tools` (the catalog, calling a tool, registering a command as a tool),
//! `/api/v1/mcp/proxy` answering a plain `curl`, the call history and the status.

use crate::common;

use std::process::Command;

use common::{
    api::{Api, admin_env},
    example_bin, fixture_upstream_yaml,
    http::RawSession,
    process::{ConfigDir, ServeProcess},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn gateway() -> ServeProcess {
    let yaml = format!(
        "security:\n  spawn_allowlist: [{:?}]\nupstreams:\n{}",
        example_bin("echo_upstream").display().to_string(),
        fixture_upstream_yaml("fx", "fx", &["echo", "fail"], "")
    );
    debug_gateway(&yaml)
}

/// A gateway on `yaml` with an admin to log in as. Debug: each call's "call done" line says
/// whether it went the gateway's own way.
fn debug_gateway(yaml: &str) -> ServeProcess {
    let [admin] = admin_env();
    let gateway = ServeProcess::start_in(
        ConfigDir::new(yaml),
        &[admin, ("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    gateway.wait_ready(std::time::Duration::from_secs(30));
    gateway
}

/// The API logged in as the admin, its token, and the proxy's URL.
async fn proxy_of(gateway: &ServeProcess) -> (Api, String, String) {
    let api = Api::logged_in(gateway).await;
    let token = api.token.clone().unwrap();
    (api, token, format!("{}/api/v1/mcp/proxy", gateway.base))
}

/// Whether a call went the gateway's own way (router and lane), as `/mcp` calls do. The log
/// line may come a little after the answer: it is waited for.
async fn went_on_the_lane(gateway: &ServeProcess) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if gateway.lane_calls() > 0 {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// `curl -s -X POST <url> -H ... -d <body>`, the body of the answer as JSON.
fn curl(url: &str, token: &str, body: &str) -> Value {
    let output = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            url,
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}"), "-d", body])
        .output()
        .expect("curl runs");
    assert!(output.status.success(), "curl failed: {output:?}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

#[tokio::test]
async fn the_proxy_answers_a_plain_curl() {
    let gateway = gateway();
    let (api, token, url) = proxy_of(&gateway).await;

    let listed = curl(
        &url,
        &token,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    );
    assert_eq!(listed["id"], 1);
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fx__echo", "fx__fail"], "{listed}");

    let called = curl(
        &url,
        &token,
        r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"fx__echo","arguments":{"x":1}}}"#,
    );
    assert_eq!(called["id"], "a");
    assert_eq!(
        called["result"]["structuredContent"]["arguments"]["x"], 1,
        "{called}"
    );
    // Answered as a 2026-07-28 client is: each result says what it is.
    assert_eq!(called["result"]["resultType"], "complete", "{called}");
    assert!(went_on_the_lane(&gateway).await, "{}", gateway.log());

    let unknown = curl(
        &url,
        &token,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nope"}}"#,
    );
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let method = curl(
        &url,
        &token,
        r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}}"#,
    );
    assert_eq!(method["error"]["code"], -32601, "{method}");
    let bad_params = curl(
        &url,
        &token,
        r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":1}}"#,
    );
    assert_eq!(bad_params["error"]["code"], -32602, "{bad_params}");

    let not_json = api
        .send_raw(
            Method::POST,
            "/api/v1/mcp/proxy",
            "application/json",
            "{oops",
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.body["error"]["code"], -32700, "{not_json:?}");
    let not_rpc = api
        .post(
            "/api/v1/mcp/proxy",
            json!({"id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(not_rpc.body["error"]["code"], -32600, "{not_rpc:?}");
    let notification = api
        .post(
            "/api/v1/mcp/proxy",
            json!({"jsonrpc": "2.0", "method": "ping"}),
        )
        .await;
    assert_eq!(notification.status, StatusCode::ACCEPTED);
    let anonymous = api
        .with_token(None)
        .post(
            "/api/v1/mcp/proxy",
            json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tools_are_listed_called_registered_and_recorded() {
    let gateway = gateway();
    let api = Api::logged_in(&gateway).await;

    let tools = api.get("/api/v1/tools").await;
    assert_eq!(tools.status, StatusCode::OK);
    assert_eq!(tools.body[0]["name"], "fx__echo", "{tools:?}");
    assert_eq!(tools.body[0]["upstream"], "fx");
    assert_eq!(tools.body[0]["original_name"], "echo");
    assert_eq!(tools.body[0]["status"], "ready");
    assert!(tools.body[0]["input_schema"].is_object());
    let filtered = api.get("/api/v1/tools?upstream=none").await;
    assert_eq!(filtered.body, json!([]));

    let called = api
        .post(
            "/api/v1/tools/call",
            json!({"tool_name": "fx__echo", "arguments": {"k": "v"}}),
        )
        .await;
    assert_eq!(called.status, StatusCode::OK, "{called:?}");
    assert_eq!(called.body["structuredContent"]["arguments"]["k"], "v");
    assert!(went_on_the_lane(&gateway).await, "{}", gateway.log());
    let failed = api
        .post("/api/v1/tools/call", json!({"tool_name": "fx__fail"}))
        .await;
    assert_eq!(failed.status, StatusCode::OK, "a tool error is a result");
    assert_eq!(failed.body["isError"], true, "{failed:?}");
    let unknown = api
        .post("/api/v1/tools/call", json!({"tool_name": "nope"}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");
    let bad = api
        .post("/api/v1/tools/call", json!({"name": "fx__echo"}))
        .await;
    assert_eq!(bad.status.as_u16() / 100, 4, "{bad:?}");

    let registered = api
        .post(
            "/api/v1/tools",
            json!({"name": "echo", "command": example_bin("echo_upstream").display().to_string()}),
        )
        .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{registered:?}");
    api.wait_for_state("echo", "ready").await;
    let echoed = api
        .post(
            "/api/v1/tools/call",
            json!({"tool_name": "echo__echo", "arguments": {"message": "m"}}),
        )
        .await;
    assert_eq!(echoed.body["content"][0]["text"], "m", "{echoed:?}");

    // A call through /mcp is recorded with its client's name.
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    session.call("fx__echo", json!({})).await;

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let calls = loop {
        let calls = api.get("/api/v1/calls").await;
        if calls.body["calls"]
            .as_array()
            .is_some_and(|calls| calls.len() >= 5)
        {
            break calls.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "calls not recorded: {calls:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let rows: Vec<(String, String, String)> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| {
            (
                call["tool"].as_str().unwrap().to_owned(),
                call["outcome"].as_str().unwrap().to_owned(),
                call["client"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "fx__echo".to_owned(),
                "ok".to_owned(),
                "raw-test".to_owned()
            ),
            ("echo__echo".into(), "ok".into(), "rest".into()),
            ("nope".into(), "error".into(), "rest".into()),
            ("fx__fail".into(), "tool_error".into(), "rest".into()),
            ("fx__echo".into(), "ok".into(), "rest".into()),
        ]
    );
    assert_eq!(calls["calls"][1]["upstream"], "echo");
    assert_eq!(calls["calls"][1]["principal"], "admin");

    let page = api.get("/api/v1/calls?limit=2").await.body;
    assert_eq!(page["calls"].as_array().unwrap().len(), 2);
    let next = page["next"].as_i64().expect("a next page");
    let rest = api
        .get(&format!("/api/v1/calls?limit=2&before={next}"))
        .await
        .body;
    assert_eq!(rest["calls"][0]["tool"], "nope", "{rest}");
    let errors = api.get("/api/v1/calls?outcome=error").await.body;
    assert_eq!(errors["calls"].as_array().unwrap().len(), 1, "{errors}");
    let by_tool = api
        .get("/api/v1/calls?tool=fx__echo&upstream=fx")
        .await
        .body;
    assert_eq!(by_tool["calls"].as_array().unwrap().len(), 2, "{by_tool}");
    let bad_limit = api.get("/api/v1/calls?limit=0").await;
    assert_eq!(bad_limit.status, StatusCode::BAD_REQUEST);
    let bad_query = api.get("/api/v1/calls?since=yesterday").await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);

    let status = api.get("/api/v1/system/status").await.body;
    assert_eq!(status["upstreams"]["total"], 2, "{status}");
    assert_eq!(status["upstreams"]["ready"], 2);
    assert_eq!(status["sessions"], 1);
    assert_eq!(status["calls"], 5);
    assert_eq!(status["errors"], 2);
    assert_eq!(status["tools"], 3);
}

/// The proxy answers an upstream's `input_required` result as it is, and its retry carries
/// the caller's answers and the upstream's `requestState` back: the TypeScript SDK's
/// 2026-07-28 server, which asks in two rounds, ends as it ends directly, every call on the
/// gateway's own way. `/api/v1/tools/call`, which cannot retry, is refused.
#[tokio::test]
async fn the_proxy_carries_a_retry_with_answers_to_the_upstream() {
    use common::fixtures::{HttpFixture, Implementation};
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let yaml = format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: modern\n",
        fixture.url
    );
    let gateway = debug_gateway(&yaml);
    let (api, token, url) = proxy_of(&gateway).await;
    let mut params = json!({"name": "fx__test_input_required_result_multi_round", "arguments": {}});
    let mut calls = 0;
    let done = loop {
        calls += 1;
        assert!(calls <= 4, "still asked after 4 calls");
        let request =
            json!({"jsonrpc": "2.0", "id": calls, "method": "tools/call", "params": params});
        let answer = curl(&url, &token, &request.to_string());
        let result = &answer["result"];
        if result["resultType"] != "input_required" {
            break answer;
        }
        let answers: serde_json::Map<String, Value> = result["inputRequests"]
            .as_object()
            .unwrap_or_else(|| panic!("{answer}"))
            .keys()
            .map(|key| {
                (
                    key.clone(),
                    json!({"action": "accept", "content": {"name": "Ada"}}),
                )
            })
            .collect();
        params["inputResponses"] = Value::Object(answers);
        params["requestState"] = result["requestState"].clone();
    };
    assert_eq!(
        done["result"]["content"][0]["text"], "multi-round complete after 2 rounds",
        "{done}"
    );
    assert_eq!(calls, 3, "{done}");
    gateway.calls_done(calls).await;
    assert_eq!(gateway.lane_calls(), calls, "{}", gateway.log());

    // `/api/v1/tools/call` has no retry: the upstream's question is refused, and says why.
    let asked = api
        .post(
            "/api/v1/tools/call",
            json!({"tool_name": "fx__test_input_required_result_multi_round"}),
        )
        .await;
    assert_eq!(asked.status, StatusCode::BAD_GATEWAY, "{asked:?}");
    assert!(
        asked
            .body
            .to_string()
            .contains("a REST call has no client to ask"),
        "{asked:?}"
    );
}

/// `/api/v1/tools/call` and the proxy answer a tool's result alike whichever way the call
/// takes: the gateway's own (a stdio upstream) or rmcp's typed one (the same server behind a
/// WebSocket upstream). The first has no `resultType`, as a session-era client is answered;
/// the proxy's answers have it, as a 2026-07-28 client's are.
#[tokio::test]
async fn both_endpoints_answer_alike_on_either_way() {
    let inner = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo", "fail"], "")
    ));
    let yaml = format!(
        "upstreams:\n{}  ws:\n    url: {:?}\n",
        fixture_upstream_yaml("fx", "fx", &["echo", "fail"], ""),
        inner.ws_url("/ws"),
    );
    let gateway = debug_gateway(&yaml);
    let (api, token, proxy) = proxy_of(&gateway).await;
    let mut calls = 0;
    for tool in ["echo", "fail"] {
        let arguments = json!({"k": "v", "n": [1, 2.5]});
        let [own, typed] = [format!("fx__{tool}"), format!("ws__fx__{tool}")].map(|name| {
            let request = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": name, "arguments": arguments}});
            curl(&proxy, &token, &request.to_string())
        });
        calls += 2;
        assert_eq!(
            own["result"], typed["result"],
            "the proxy: {own} vs {typed}"
        );
        assert_eq!(own["result"]["resultType"], "complete", "{own}");

        let [own, typed] = [format!("fx__{tool}"), format!("ws__fx__{tool}")].map(|name| {
            let api = &api;
            let arguments = arguments.clone();
            async move {
                api.post(
                    "/api/v1/tools/call",
                    json!({"tool_name": name, "arguments": arguments}),
                )
                .await
            }
        });
        let (own, typed) = (own.await, typed.await);
        calls += 2;
        assert_eq!(own.status, StatusCode::OK, "{own:?}");
        assert_eq!(
            own.body, typed.body,
            "/api/v1/tools/call: {own:?} vs {typed:?}"
        );
        assert_eq!(own.body.get("resultType"), None, "{own:?}");
        assert_eq!(own.body["isError"] == true, tool == "fail", "{own:?}");
    }
    gateway.calls_done(calls).await;
    assert_eq!(gateway.lane_calls(), calls / 2, "{}", gateway.log());
}

/// The tool search's tools answer alike through the proxy, whether the call is plain or
/// carries more, a `task`, which takes the proxy's typed fallback: `list_tool_names` is
/// answered by the gateway on either way, and `call_tool` goes the gateway's own way when
/// plain, unwrapped to the tool it names.
#[tokio::test]
async fn the_proxy_answers_the_search_tools_alike_on_every_way() {
    let yaml = format!(
        "catalog:\n  tool_search: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = debug_gateway(&yaml);
    let (_api, token, proxy) = proxy_of(&gateway).await;
    let answer = |params: &Value, task: bool| {
        let mut params = params.clone();
        if task {
            params["task"] = json!({"ttl": 60000});
        }
        let request = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
        curl(&proxy, &token, &request.to_string())
    };
    let names = json!({"name": "list_tool_names", "arguments": {}});
    let echo = json!({"name": "call_tool",
        "arguments": {"name": "fx__echo", "arguments": {"k": "v", "n": [1, 2.5]}}});
    for params in [names, echo] {
        let [plain, typed] = [false, true].map(|task| answer(&params, task));
        assert_eq!(
            plain["result"], typed["result"],
            "{params}: {plain} vs {typed}"
        );
        assert_eq!(
            plain["result"]["resultType"], "complete",
            "{params}: {plain}"
        );
        assert_eq!(plain["result"]["isError"], false, "{params}: {plain}");
    }
    gateway.calls_done(2).await;
    assert_eq!(gateway.lane_calls(), 1, "{}", gateway.log());
    let own_way = "the tool search answers on the gateway's own way";
    common::wait_logged(|| gateway.log(), own_way, 1).await;
    let own_answers = gateway.log().matches(own_way).count();
    assert_eq!(
        own_answers,
        1,
        "the plain list_tool_names:\n{}",
        gateway.log()
    );
}

/// A request an upstream makes during a REST call has no client to go to, even while a
/// session's call is in flight on the same shared stdio connection (the reference server's):
/// the session, which could answer it, is never asked for another caller's sampling, and the
/// REST call is answered at once rather than waiting on it. Alone, it is told why.
#[tokio::test]
async fn an_upstreams_request_during_a_rest_call_goes_to_no_session() {
    let (node, everything) = common::everything_command();
    let yaml = format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    startup_timeout_secs: 60\n"
    );
    let [admin] = admin_env();
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &[admin]);
    gateway.wait_ready(std::time::Duration::from_secs(60));
    let api = Api::logged_in(&gateway).await;
    let session = RawSession::open_declaring(
        common::http::client(),
        &gateway.mcp_url(),
        &[],
        json!({"sampling": {}}),
    )
    .await;
    let long = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "everything__trigger-long-running-operation",
        "arguments": {"duration": 5, "steps": 5}}});
    let handle = session.handle();
    let in_flight = tokio::spawn(async move { handle.post_json(&long).await });
    // Time for the session's call to reach the upstream, well within its 5 s.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;

    // The server's tool fails with the gateway's refusal, which says why.
    let api = &api;
    let refused = |because: &'static str| async move {
        let answer = api
            .post(
                "/api/v1/tools/call",
                json!({"tool_name": "everything__trigger-sampling-request",
                       "arguments": {"prompt": "hi", "maxTokens": 5}}),
            )
            .await;
        assert_eq!(answer.body["isError"], true, "{answer:?}");
        assert!(answer.body.to_string().contains(because), "{answer:?}");
    };
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        refused("calls of several clients"),
    )
    .await
    .expect("the REST call is answered, not left waiting on another client");
    let long = in_flight.await.expect("the session's call");
    assert!(
        !long.body.contains("sampling/createMessage"),
        "the session was asked for the REST call's sampling: {}",
        long.body
    );
    assert_eq!(long.message()["id"], 7, "{}", long.body);
    // Alone on the connection, the REST call is told why it cannot be asked.
    refused("a REST call has no client to ask").await;
}

/// Log messages a shared stdio upstream sends during a REST call are that call's, which asked
/// for none: they are dropped, not sent to a session that has a call in flight on the same
/// connection at the level it set (the TypeScript SDK's server, whose log messages over stdio
/// name no request).
#[tokio::test]
async fn an_upstreams_log_messages_during_a_rest_call_go_to_no_session() {
    use common::fixtures::{Implementation, stdio_upstream_yaml};
    let yaml = format!(
        "upstreams:\n{}",
        stdio_upstream_yaml(Implementation::TypeScript, "fx", &[], "legacy")
    );
    let gateway = debug_gateway(&yaml);
    let api = Api::logged_in(&gateway).await;
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let set = session
        .request("logging/setLevel", json!({"level": "debug"}))
        .await;
    assert!(set.message()["result"].is_object(), "{}", set.body);
    let listened = session.open_stream().await;
    let slow = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "fx__test_slow_tool", "arguments": {"seconds": 2}}});
    let handle = session.handle();
    let in_flight = tokio::spawn(async move { handle.post_json(&slow).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let logged = api
        .post(
            "/api/v1/tools/call",
            json!({"tool_name": "fx__test_tool_with_logging"}),
        )
        .await;
    assert_eq!(
        logged.body["content"][0]["text"], "Tool with logging executed successfully",
        "{logged:?}"
    );
    let slow = in_flight.await.expect("the session's call");
    assert_eq!(slow.message()["result"]["content"][0]["text"], "slept 2");
    // A log message sent on the session's own stream would be there by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for (stream, text) in [
        ("the call's", slow.body.clone()),
        ("the session's", listened.lock().unwrap().clone()),
    ] {
        assert!(
            !text.contains("Tool processing data"),
            "the REST call's log message went on {stream} stream: {text}"
        );
    }
}
