//! A plain 2026-07-28 `tools/call` over HTTP takes the gateway's own way: routed by lookup and
//! sent on the stdio upstream's lane, its arguments and result carried as JSON text, whatever
//! the upstream's era, its progress, if it asked for any, on an event stream before the
//! answer, and so do the log messages it asked for. A request that asks for more than the
//! call (a key of the protocol's this way does not read), or that rmcp's server must refuse
//! (headers that contradict the body), still gets rmcp's answer.

use crate::common;

use common::{
    fixture_upstream_yaml,
    process::{ConfigDir, ServeProcess},
};
use serde_json::{Value, json};

pub(crate) fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "lane-test", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

fn gateway(protocol: &str) -> ServeProcess {
    let yaml = format!(
        "upstreams:\n{}",
        fixture_upstream_yaml(
            "fx",
            "fx",
            &["echo"],
            &format!("    protocol: {protocol}\n")
        )
    );
    // Debug: each call's "call done" line says which way it went.
    ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    )
}

async fn call(gateway: &ServeProcess, name_header: &str, params: Value) -> (u16, Value) {
    post_call(&gateway.mcp_url(), name_header, &[], params).await
}

/// A 2026-07-28 `tools/call` with `params` POSTed to `url`, naming `name_header` in
/// `Mcp-Name`, with more `headers`: the answer's status and JSON-RPC message.
pub(crate) async fn post_call(
    url: &str,
    name_header: &str,
    headers: &[(&str, &str)],
    params: Value,
) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": "call-1", "method": "tools/call", "params": params});
    let mut request = common::http::modern_post(url, "tools/call", Some(name_header));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body.to_string()).send().await.expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let message = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap_or(&text)
        .to_owned();
    (
        status,
        serde_json::from_str(&message).unwrap_or(json!({"unreadable": text})),
    )
}

async fn plain_call_goes_on_the_lane(protocol: &str) {
    let gateway = gateway(protocol);
    gateway.wait_ready(std::time::Duration::from_secs(20));
    let (status, answer) = call(
        &gateway,
        "fx__echo",
        json!({"_meta": meta(), "name": "fx__echo", "arguments": {"k": "v", "n": [1, 2.5]}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "call-1", "{answer}");
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    let echoed = &answer["result"]["structuredContent"];
    assert_eq!(echoed["tool"], "echo", "the upstream's own name: {answer}");
    assert_eq!(
        echoed["arguments"],
        json!({"k": "v", "n": [1, 2.5]}),
        "{answer}"
    );
    gateway.wait_for_log("lane=true").await;
    assert!(gateway.lane_calls() > 0, "{}", gateway.log());
    // The call's span names its upstream once, though two outputs (stderr and the console's
    // recent lines) write it.
    let log = gateway.log();
    let done = log.lines().find(|line| line.contains("call done")).unwrap();
    assert_eq!(done.matches("upstream=").count(), 1, "{done}");
}

#[tokio::test]
async fn a_plain_call_to_a_session_era_upstream_goes_on_the_lane() {
    plain_call_goes_on_the_lane("legacy").await;
}

#[tokio::test]
async fn a_plain_call_to_a_2026_07_28_upstream_goes_on_the_lane() {
    plain_call_goes_on_the_lane("modern").await;
}

#[tokio::test]
async fn a_tool_error_an_upstream_error_and_an_unknown_tool_keep_their_answers() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo", "fail"], "")
    ));
    gateway.wait_ready(std::time::Duration::from_secs(20));
    let (status, failed) = call(
        &gateway,
        "fx__fail",
        json!({"_meta": meta(), "name": "fx__fail", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    assert_eq!(failed["result"]["resultType"], "complete", "{failed}");
    let (status, unknown) = call(
        &gateway,
        "fx__nothing",
        json!({"_meta": meta(), "name": "fx__nothing", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 200, "{unknown}");
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    assert!(
        unknown["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fx__nothing"),
        "{unknown}"
    );
}

#[tokio::test]
async fn requests_that_ask_for_more_or_contradict_their_headers_get_rmcps_answers() {
    let gateway = gateway("auto");
    gateway.wait_ready(std::time::Duration::from_secs(20));
    // A key of the protocol's own this way does not read: rmcp's way, still answered.
    let mut with_more = meta();
    with_more["io.modelcontextprotocol/unread"] = json!(true);
    let (status, answer) = call(
        &gateway,
        "fx__echo",
        json!({"_meta": with_more, "name": "fx__echo", "arguments": {"k": "p"}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"]["arguments"]["k"], "p",
        "{answer}"
    );
    gateway.calls_done(1).await;
    assert_eq!(gateway.lane_calls(), 0, "{}", gateway.log());
    // An Mcp-Name header that names another tool: refused, not routed by either name.
    let (status, refused) = call(
        &gateway,
        "fx__other",
        json!({"_meta": meta(), "name": "fx__echo", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].is_object(), "{refused}");
}

/// A 2026-07-28 call that asks for progress takes the gateway's own way: the progress each
/// SDK's server reports comes first, under the client's token, on an event stream that ends
/// with the answer; a call whose tool reports none is answered with one JSON body, as a plain
/// call is (and as rmcp answers either).
#[tokio::test]
async fn a_2026_07_28_calls_progress_comes_on_its_stream_under_the_clients_token() {
    use common::fixtures::{HttpFixture, Implementation};
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start(implementation);
        let gateway = in_front_of_in_2026_07_28(&fixture);
        for (n, tool) in ["fx__test_tool_with_progress", "fx__test_simple_text"]
            .into_iter()
            .enumerate()
        {
            let mut with_progress = meta();
            with_progress["progressToken"] = json!(n + 70);
            let params = json!({"_meta": with_progress, "name": tool, "arguments": {}});
            let (kind, messages) = streamed_call(&gateway.mcp_url(), tool, params).await;
            let text = format!("{messages:?}");
            let progress = common::of_method(&messages, "notifications/progress");
            let answer = messages.last().unwrap();
            assert_eq!(answer["id"], "call-1", "{label}, {tool}: {text}");
            assert_eq!(
                answer["result"]["resultType"], "complete",
                "{label}: {text}"
            );
            if n == 0 {
                assert!(kind.starts_with("text/event-stream"), "{label}: {kind}");
                assert_eq!(progress.len(), 3, "{label}: {text}");
                assert!(
                    progress
                        .iter()
                        .all(|update| update["params"]["progressToken"] == 70),
                    "{label}: {text}"
                );
            } else {
                assert_eq!(kind, "application/json", "{label}: {text}");
                assert!(progress.is_empty(), "{label}: {text}");
            }
        }
        gateway.calls_done(2).await;
        assert_eq!(gateway.lane_calls(), 2, "{label}:\n{}", gateway.log());
    }
}

/// A 2026-07-28 call of `tool` with `params` POSTed to `url`: the answer's content type, and
/// its messages (the one JSON body, or each event's).
async fn streamed_call(url: &str, tool: &str, params: Value) -> (String, Vec<Value>) {
    let body = json!({"jsonrpc": "2.0", "id": "call-1", "method": "tools/call", "params": params});
    let response = common::http::modern_post(url, "tools/call", Some(tool))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    let messages = if kind.starts_with("text/event-stream") {
        text.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter(|data| !data.is_empty())
            .map(|data| serde_json::from_str(data).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&text).unwrap()]
    };
    (kind, messages)
}

/// A 2026-07-28 call that asks for log messages (`io.modelcontextprotocol/logLevel`) takes
/// the gateway's own way, to a 2026-07-28 upstream and to a session-era one alike: the
/// messages each SDK's server sends at the level asked, or above, come on the call's stream
/// before the answer, as many as that server sends the client directly; asked for a level
/// above theirs, the client gets one JSON body, as rmcp answers either. (rmcp's session-era
/// server is left out: where its messages go, they race the answer.)
#[tokio::test]
async fn a_2026_07_28_calls_log_messages_come_on_its_stream_at_its_level() {
    use common::fixtures::{HttpFixture, Implementation};
    const TOOL: &str = "test_tool_with_logging";
    let logged = |messages: &[Value]| {
        common::of_method(messages, "notifications/message")
            .into_iter()
            .map(|message| message["params"]["data"].clone())
            .collect::<Vec<_>>()
    };
    let with_level = |tool: &str, level: &str| {
        let mut meta = meta();
        meta["io.modelcontextprotocol/logLevel"] = json!(level);
        json!({"_meta": meta, "name": tool, "arguments": {}})
    };
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start(implementation);
        let (_, direct) = streamed_call(&fixture.url, TOOL, with_level(TOOL, "info")).await;
        let sent = logged(&direct);
        assert!(!sent.is_empty(), "{label} logs nothing: {direct:?}");
        // rmcp's session-era server sends a tool's log messages on the session's own stream,
        // not on the call's, so the last can come after the answer, when a 2026-07-28 call's
        // stream has ended (the interop matrix's known gap; `interop_matrix.rs`).
        let protocols: &[&str] = match implementation {
            Implementation::Rust => &["modern"],
            _ => &["modern", "legacy"],
        };
        for protocol in protocols {
            let gateway = in_front_of(&fixture, protocol);
            let tool = format!("fx__{TOOL}");
            let (kind, messages) =
                streamed_call(&gateway.mcp_url(), &tool, with_level(&tool, "info")).await;
            let seen = format!("{label}, {protocol}: {messages:?}");
            assert!(kind.starts_with("text/event-stream"), "{seen}");
            assert_eq!(logged(&messages), sent, "{seen}");
            let answer = messages.last().unwrap();
            assert_eq!(answer["id"], "call-1", "{seen}");
            assert_eq!(answer["result"]["resultType"], "complete", "{seen}");
            let (kind, messages) =
                streamed_call(&gateway.mcp_url(), &tool, with_level(&tool, "error")).await;
            let seen = format!("{label}, {protocol}: {messages:?}");
            assert_eq!(kind, "application/json", "{seen}");
            assert_eq!(messages[0]["result"]["resultType"], "complete", "{seen}");
            gateway.calls_done(2).await;
            assert_eq!(gateway.lane_calls(), 2, "{seen}:\n{}", gateway.log());
        }
    }
}

/// A gateway, logging at debug (which says which way each call went), that reaches
/// `fixture` as `fx` in 2026-07-28; ready.
fn in_front_of_in_2026_07_28(fixture: &common::fixtures::HttpFixture) -> ServeProcess {
    in_front_of(fixture, "modern")
}

/// A gateway, logging at debug, that reaches `fixture` as `fx` by `protocol`; ready.
fn in_front_of(fixture: &common::fixtures::HttpFixture, protocol: &str) -> ServeProcess {
    let yaml = format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: {protocol}\n",
        fixture.url
    );
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    gateway.wait_ready(std::time::Duration::from_secs(30));
    gateway
}

/// Each SDK's 2026-07-28 streamable HTTP server behind the gateway: the call is one POST
/// of ours, and the answer is the SDK's, with the arguments it got echoed back.
#[tokio::test]
async fn plain_calls_to_each_sdks_2026_07_28_http_server_go_on_the_lane() {
    use common::fixtures::{HttpFixture, Implementation};
    for implementation in Implementation::ALL {
        let fixture = HttpFixture::start(implementation);
        let gateway = in_front_of_in_2026_07_28(&fixture);
        let label = implementation.label();
        let (status, answer) = call(
            &gateway,
            "fx__test_simple_text",
            json!({"_meta": meta(), "name": "fx__test_simple_text", "arguments": {}}),
        )
        .await;
        assert_eq!(status, 200, "{label}: {answer}");
        assert_eq!(answer["id"], "call-1", "{label}: {answer}");
        assert_eq!(
            answer["result"]["resultType"], "complete",
            "{label}: {answer}"
        );
        assert_eq!(
            answer["result"]["content"][0]["text"], "This is a simple text response for testing.",
            "{label}: {answer}"
        );
        gateway.wait_for_log("lane=true").await;
    }
}

/// Tools whose names a header cannot carry as they are (non-ASCII, spaces at the ends, a name
/// that looks encoded), behind each SDK's 2026-07-28 server, which checks `Mcp-Name` against
/// the body: the lane names them in SEP-2243's Base64 form, and each call is answered by the
/// tool it names.
#[tokio::test]
async fn tools_whose_names_a_header_cannot_carry_as_they_are_are_called_on_the_lane() {
    use common::fixtures::{HttpFixture, Implementation};
    const ODD_NAMES: [&str; 3] = ["café", " padded ", "=?base64?eA==?="];
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start_with(implementation, &["--odd-names"]);
        let gateway = in_front_of_in_2026_07_28(&fixture);
        let params = json!({"_meta": meta()});
        let listed =
            common::http::modern_message(&gateway.mcp_url(), "tools/list", None, &params).await;
        // The clients' names the gateway made of them: they say nothing of the originals.
        let exposed: Vec<String> = listed["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{label}: {listed}"))
            .iter()
            .filter(|tool| tool["description"] == "Answers with its own name")
            .map(|tool| tool["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(exposed.len(), ODD_NAMES.len(), "{label}: {listed}");
        let mut answered = Vec::new();
        for name in &exposed {
            let (status, answer) = call(
                &gateway,
                name,
                json!({"_meta": meta(), "name": name, "arguments": {}}),
            )
            .await;
            assert_eq!(status, 200, "{label}, {name}: {answer}");
            assert_eq!(
                answer["result"]["resultType"], "complete",
                "{label}, {name}: {answer}"
            );
            answered.push(
                answer["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        answered.sort();
        let mut expected = ODD_NAMES.map(str::to_owned).to_vec();
        expected.sort();
        assert_eq!(answered, expected, "{label}");
        gateway.calls_done(ODD_NAMES.len()).await;
        assert_eq!(
            gateway.lane_calls(),
            ODD_NAMES.len(),
            "{label}: every call on the lane:\n{}",
            gateway.log()
        );
    }
}

/// A 2026-07-28 client's retries of `input_required` rounds take the gateway's own way: each
/// SDK's server that asks in two rounds (`requestState` carried across) gets the client's
/// answers and its own state back, and ends as it ends directly; in front of a session-era
/// upstream, whose questions come mid-call, the gateway's own rounds do the same.
#[tokio::test]
async fn a_2026_07_28_clients_retries_with_answers_go_on_the_lane() {
    use common::fixtures::{HttpFixture, Implementation};
    const TOOL: &str = "test_input_required_result_multi_round";
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start(implementation);
        let (direct, rounds) = answered_in_rounds(&fixture.url, TOOL).await;
        assert!(rounds >= 2, "{label}: {direct}");
        // Only the TypeScript fixture's tool asks mid-call in a session: the Python SDK's
        // session-era server refuses the tool's `input_required` result, and the rmcp
        // fixture's does not ask (docs/interop.md).
        let protocols: &[&str] = match implementation {
            Implementation::TypeScript => &["modern", "legacy"],
            _ => &["modern"],
        };
        for protocol in protocols {
            let gateway = in_front_of(&fixture, protocol);
            let (through, calls) =
                answered_in_rounds(&gateway.mcp_url(), &format!("fx__{TOOL}")).await;
            assert_eq!(
                through["result"]["content"], direct["result"]["content"],
                "{label}, {protocol}: {through}"
            );
            gateway.calls_done(calls).await;
            assert_eq!(
                gateway.lane_calls(),
                calls,
                "{label}, {protocol}:\n{}",
                gateway.log()
            );
        }
    }
}

/// Calls `tool` at `url` in 2026-07-28 as a client that takes elicitation, answering each
/// round's questions (with a name) in a retry that carries the round's `requestState`: the
/// last answer, and how many calls it took.
async fn answered_in_rounds(url: &str, tool: &str) -> (Value, usize) {
    let mut meta = meta();
    meta["io.modelcontextprotocol/clientCapabilities"] = json!({"elicitation": {}});
    let mut params = json!({"_meta": meta, "name": tool, "arguments": {}});
    for calls in 1..=4 {
        let (status, answer) = post_call(url, tool, &[], params.clone()).await;
        assert_eq!(status, 200, "{answer}");
        if answer["result"]["resultType"] != "input_required" {
            return (answer, calls);
        }
        let result = &answer["result"];
        let answers: serde_json::Map<String, Value> = result["inputRequests"]
            .as_object()
            .unwrap_or_else(|| panic!("{answer}"))
            .keys()
            .map(|key| {
                let accepted = json!({"action": "accept", "content": {"name": "Ada"}});
                (key.clone(), accepted)
            })
            .collect();
        params["inputResponses"] = Value::Object(answers);
        match result.get("requestState") {
            Some(state) => params["requestState"] = state.clone(),
            None => _ = params.as_object_mut().unwrap().remove("requestState"),
        }
    }
    panic!("{tool} at {url} still asks after 4 calls");
}
