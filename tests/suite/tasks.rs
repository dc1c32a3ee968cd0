//! Tool calls run as tasks (issue 20) in front of an upstream that knows nothing of tasks
//! (the conformance scenarios are in `conformance_tasks.rs`):
//! - a task outlives the client's request and connection, and is its principal's alone;
//! - `tasks/cancel` cancels its call upstream (the test upstream logs `sleep <tag>
//!   cancelled`, which the gateway copies into its log) and the task;
//! - a gateway killed while a task ran reports it `failed` once restarted, not lost;
//! - another gateway on the same PostgreSQL registry finds the task and follows it, and says
//!   where its `tasks/cancel` must go;
//! - a tool that runs as a task alone refuses a client that does not take tasks, with -32021
//!   naming the extension;
//! - a tool that may run as one answers such a client's call as a plain call, on the
//!   gateway's own way;
//! - a client that takes tasks calls tools the gateway runs as none on the gateway's own way
//!   too, and a task the upstream makes of one (the rmcp fixture serves the extension) is
//!   given under the gateway's id and followed through the gateway.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    api::{Api, admin_env},
    example_bin,
    fixtures::{HttpFixture, Implementation},
    http::modern_request,
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

const TASKS: &str = "io.modelcontextprotocol/tasks";

fn yaml() -> String {
    yaml_on("")
}

/// The same with `database`, a config section.
fn yaml_on(database: &str) -> String {
    format!(
        "{database}auth:\n  enabled: true\nupstreams:\n  fx:\n    command: {:?}\n    args: [\"--label\", \"fx\", \"--sleep\", \"--tool\", \"sleep_alone\"]\n    tools:\n      sleep: {{task: optional}}\n      sleep_alone: {{task: required}}\n",
        example_bin("fixture_upstream").display().to_string()
    )
}

/// A 2026-07-28 request of `key`, declaring the tasks extension when `tasks`, on a connection
/// of its own that closes with the answer (the client leaves); the JSON-RPC message it gets.
async fn ask(
    gateway: &ServeProcess,
    key: &str,
    method: &str,
    name: &str,
    params: Value,
    tasks: bool,
) -> Value {
    let capabilities = if tasks {
        json!({"extensions": {TASKS: {}}})
    } else {
        json!({})
    };
    modern_request(
        &gateway.mcp_url(),
        key,
        method,
        Some(name),
        params,
        capabilities,
    )
    .await
}

/// Starts a 20-second sleep tagged `tag` as a task of `key`'s; its id.
async fn start(gateway: &ServeProcess, key: &str, tag: &str) -> String {
    let params = json!({"name": "fx__sleep", "arguments": {"ms": 20000, "tag": tag}});
    let created = ask(gateway, key, "tools/call", "fx__sleep", params, true).await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    assert_eq!(created["result"]["status"], "working", "{created}");
    created["result"]["taskId"].as_str().unwrap().to_owned()
}

async fn get(gateway: &ServeProcess, key: &str, id: &str) -> Value {
    ask(gateway, key, "tasks/get", id, json!({"taskId": id}), true).await
}

/// Polls `tasks/get` (up to 15 s) until the task has `status`.
async fn wait_status(gateway: &ServeProcess, key: &str, id: &str, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let task = get(gateway, key, id).await;
        if task["result"]["status"] == status {
            return task;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never {status}: {task}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_task_outlives_its_request_is_cancelled_upstream_and_survives_a_restart_as_failed() {
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml()), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let (alice, bob) = (api.create_key("alice").await, api.create_key("bob").await);

    // The request that made it is over; the task goes on, for alice alone.
    let id = start(&gateway, &alice, "first").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let task = get(&gateway, &alice, &id).await;
    assert_eq!(task["result"]["status"], "working", "{task}");
    let stranger = get(&gateway, &bob, &id).await;
    assert_eq!(stranger["error"]["code"], -32602, "not bob's: {stranger}");
    let cancel = ask(
        &gateway,
        &bob,
        "tasks/cancel",
        &id,
        json!({"taskId": id}),
        true,
    )
    .await;
    assert_eq!(
        cancel["error"]["code"], -32602,
        "nor bob's to cancel: {cancel}"
    );

    // Cancelled: the call upstream too.
    let cancel = ask(
        &gateway,
        &alice,
        "tasks/cancel",
        &id,
        json!({"taskId": id}),
        true,
    )
    .await;
    assert_eq!(cancel["result"]["resultType"], "complete", "{cancel}");
    gateway.wait_for_log("sleep first cancelled").await;
    wait_status(&gateway, &alice, &id, "cancelled").await;

    // A task the gateway was running when it was killed is failed, not lost.
    let id = start(&gateway, &alice, "second").await;
    let (_, config) = gateway.stop(Signal::SIGKILL);
    let gateway = ServeProcess::start_in(config, &[]);
    let task = wait_status(&gateway, &alice, &id, "failed").await;
    let message = task["result"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("stopped"), "{task}");
    assert!(task["result"].get("result").is_none(), "{task}");

    // Required: refused to a client that does not take tasks, naming the extension.
    let params = json!({"name": "fx__sleep_alone", "arguments": {"ms": 10, "tag": "alone"}});
    let refused = ask(
        &gateway,
        &alice,
        "tools/call",
        "fx__sleep_alone",
        params,
        false,
    )
    .await;
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert!(
        refused["error"]["data"]["requiredCapabilities"]["extensions"][TASKS].is_object(),
        "{refused}"
    );
}

/// A client that does not take tasks calls a tool that may run as one: the gateway's own way
/// (the upstream's lane), answered at once, in each door's era; one that takes tasks gets a
/// task, on the typed way.
#[tokio::test]
async fn a_call_that_may_run_as_a_task_goes_on_the_lane_for_a_client_that_takes_none() {
    let env = [admin_env()[0], ("RUST_LOG", "mcps=debug,rmcp=warn")];
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml()), &env);
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("alice").await;
    let params = json!({"name": "fx__sleep", "arguments": {"ms": 10, "tag": "plain"}});
    let answer = ask(&gateway, &key, "tools/call", "fx__sleep", params, false).await;
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    let bearer = format!("Bearer {key}");
    let mut session =
        common::http::RawSession::open_with(&gateway.mcp_url(), &[("authorization", &bearer)])
            .await;
    let answer = session
        .call("fx__sleep", json!({"ms": 10, "tag": "session"}))
        .await;
    assert!(answer["result"]["content"].is_array(), "{answer}");
    gateway.calls_done(2).await;
    assert_eq!(gateway.lane_calls(), 2, "{}", gateway.log());
    // A client that takes tasks is given one.
    start(&gateway, &key, "task").await;
}

/// The tool search's `call_tool` runs as a plain call of the tool it names, on the gateway's
/// own way, even for a client that takes tasks and a tool that may run as one.
#[tokio::test]
async fn call_tool_is_a_plain_call_on_the_lane_for_a_client_that_takes_tasks() {
    let env = [admin_env()[0], ("RUST_LOG", "mcps=debug,rmcp=warn")];
    let yaml = yaml_on("catalog:\n  tool_search: true\n");
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &env);
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("alice").await;
    let params = json!({"name": "call_tool",
        "arguments": {"name": "fx__sleep", "arguments": {"ms": 10, "tag": "searched"}}});
    let answer = ask(&gateway, &key, "tools/call", "call_tool", params, true).await;
    assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    gateway.calls_done(1).await;
    assert_eq!(gateway.lane_calls(), 1, "{}", gateway.log());
}

/// A client that takes tasks calls two tools the gateway runs as no task (no `task:` set):
/// both go the gateway's own way. The rmcp fixture answers one at once and makes a task of
/// the other, which the client gets under an id of the gateway's and follows to its end.
#[tokio::test]
async fn a_task_taking_clients_plain_calls_go_on_the_lane_and_an_upstreams_task_is_passed() {
    let fixture = HttpFixture::start(Implementation::Rust);
    let yaml = format!("upstreams:\n  fx:\n    url: {:?}\n", fixture.url);
    let env = [("RUST_LOG", "mcps=debug,rmcp=warn")];
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &env);
    let call = |tool: &'static str, arguments: Value| {
        let params = json!({"name": tool, "arguments": arguments});
        ask(&gateway, "", "tools/call", tool, params, true)
    };
    let greeted = call("fx__greet", json!({"name": "Ada"})).await;
    assert_eq!(greeted["result"]["resultType"], "complete", "{greeted}");
    let created = call(
        "fx__slow_compute",
        json!({"seconds": 0.5, "label": "passed"}),
    )
    .await;
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let id = created["result"]["taskId"].as_str().unwrap().to_owned();
    // The gateway's ids are 32 hex digits; rmcp's are not.
    assert!(
        id.len() == 32 && id.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{created}"
    );
    let done = wait_status(&gateway, "", &id, "completed").await;
    assert!(done.to_string().contains("computed passed"), "{done}");
    gateway.calls_done(2).await;
    assert_eq!(gateway.lane_calls(), 2, "{}", gateway.log());
}

#[tokio::test]
async fn another_replica_finds_a_task_and_follows_it() {
    let url = fresh_database().await;
    let database = format!("database:\n  url: {url:?}\n  secret_key: shared by the replicas\n");
    let a = ServeProcess::start_in(ConfigDir::new(&yaml_on(&database)), &admin_env());
    let b = ServeProcess::start_in(ConfigDir::new(&yaml_on(&database)), &[]);
    let alice = Api::logged_in(&a).await.create_key("alice").await;

    let id = start(&a, &alice, "replicated").await;
    let seen = get(&b, &alice, &id).await;
    assert_eq!(seen["result"]["status"], "working", "{seen}");
    let elsewhere = ask(&b, &alice, "tasks/cancel", &id, json!({"taskId": id}), true).await;
    let message = elsewhere["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("another gateway"), "{elsewhere}");

    let cancel = ask(&a, &alice, "tasks/cancel", &id, json!({"taskId": id}), true).await;
    assert_eq!(cancel["result"]["resultType"], "complete", "{cancel}");
    a.wait_for_log("sleep replicated cancelled").await;
    wait_status(&b, &alice, &id, "cancelled").await;
}
