//! Gateways that share one PostgreSQL registry agree: a key made on one works on the others at
//! once; revoked on one it fails on the others, and a service added, changed or removed
//! through one runs, changes or stops on all, within a second (notified with
//! `LISTEN`/`NOTIFY`).

use std::time::{Duration, Instant};

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::{RawSession, metric},
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
    served::ServedUpstream,
};
use reqwest::StatusCode;
use serde_json::json;

fn yaml(url: &str) -> String {
    format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\nsecurity:\n  allow_private_urls: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    )
}

/// Waits up to `within` for `check` to hold; how long it took.
async fn within<F: AsyncFn() -> bool>(within: Duration, what: &str, check: F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn replicas_on_one_database_agree_on_keys_and_services() {
    let url = fresh_database().await;
    let a = ServeProcess::start_in(ConfigDir::new(&yaml(&url)), &admin_env());
    let b = ServeProcess::start_in(ConfigDir::new(&yaml(&url)), &[]);
    let on_a = Api::logged_in(&a).await;
    let on_b = Api::logged_in(&b).await;

    // A key made on A works on B; revoked on B, it fails on A.
    let key = on_a.create_key("agent").await;
    let status = async |gateway: &ServeProcess| {
        Api::new(gateway)
            .with_token(Some(&key))
            .get("/api/v1/auth/me")
            .await
            .status
    };
    // At once: B looks for a key it does not know in the registry.
    assert_eq!(
        status(&b).await,
        StatusCode::OK,
        "the key works on B at once"
    );
    on_b.revoke_key("agent").await;
    let took = within(SECOND, "the key fails on A", async || {
        status(&a).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("a key revoked on B failed on A after {took:?}");

    // A service added through A is callable through B; removed through B, it stops on A.
    let everything = ServedUpstream::everything("streamableHttp");
    let added = on_a
        .post(
            "/api/v1/mcp/services",
            json!({"name": "everything", "url": everything.url("/mcp")}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    let took = within(SECOND * 5, "the service is ready on B", async || {
        on_b.get("/api/v1/mcp/services/everything").await.body["state"] == "ready"
    })
    .await;
    eprintln!("a service added on A was ready on B after {took:?}");
    let mut session = RawSession::open(&b.mcp_url()).await;
    let reply = session
        .call("everything__echo", json!({"message": "through B"}))
        .await;
    assert!(
        reply["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("through B")),
        "{reply}"
    );
    let changed = on_b
        .send(
            reqwest::Method::PATCH,
            "/api/v1/mcp/services/everything",
            Some(json!({"disabled": true})),
        )
        .await;
    assert!(changed.status.is_success(), "{changed:?}");
    within(SECOND, "the service is disabled on A", async || {
        on_a.get("/api/v1/mcp/services/everything").await.body["state"] == "disabled"
    })
    .await;
    let removed = on_a
        .send(
            reqwest::Method::DELETE,
            "/api/v1/mcp/services/everything",
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{removed:?}");
    within(SECOND, "the service is gone on B", async || {
        on_b.get("/api/v1/mcp/services/everything").await.status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        !b.log().contains("cannot tell the other gateways"),
        "{}",
        b.log()
    );
    // The file's own upstream is never touched by what the registry says.
    assert_eq!(
        on_b.get("/api/v1/mcp/services/fx").await.body["state"],
        "ready"
    );
}

fn meta() -> serde_json::Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 `tools/call` of `fx__echo` at `url` with `key`; its HTTP status and message.
async fn modern_call(url: &str, key: &str, n: u64) -> (StatusCode, serde_json::Value) {
    let response = common::http::modern_post(url, "tools/call", Some("fx__echo"))
        .bearer_auth(key)
        .body(
            json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                   "params": {"_meta": meta(), "name": "fx__echo", "arguments": {"n": n}}})
            .to_string(),
        )
        .send()
        .await
        .expect("POST through the balancer");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// The tool calls a gateway counted, from its own `/metrics`.
async fn calls_counted(gateway: &ServeProcess, key: &str) -> u64 {
    metric(&gateway.base, Some(key), "mcps_tool_calls_total{").await
}

/// Three gateways behind nginx's plain round robin: 2026-07-28 clients see one gateway. A key
/// made through the balancer works on the very next request, wherever it lands, and once
/// revoked it fails everywhere.
#[tokio::test]
async fn stateless_clients_see_one_gateway_behind_a_round_robin_balancer() {
    let url = fresh_database().await;
    let yaml = yaml(&url).replace("security:", "auth:\n  enabled: true\nsecurity:");
    let replicas: Vec<ServeProcess> = (0..3)
        .map(|n| {
            let env: &[(&str, &str)] = if n == 0 { &admin_env() } else { &[] };
            ServeProcess::start_in(ConfigDir::new(&yaml), env)
        })
        .collect();
    let balancer = common::balancer::Balancer::start(
        &replicas
            .iter()
            .map(|replica| replica.base.trim_start_matches("http://").to_owned())
            .collect::<Vec<_>>(),
    );
    let admin = Api::logged_in(&replicas[0]).await;
    let key = admin.create_key("through the balancer").await;
    let mcp = balancer.url("/mcp");
    for n in 0..30 {
        let (status, reply) = modern_call(&mcp, &key, n).await;
        assert_eq!(status, StatusCode::OK, "call {n}: {reply}");
        assert_eq!(reply["id"], n, "{reply}");
        assert_eq!(
            reply["result"]["resultType"], "complete",
            "call {n}: {reply}"
        );
    }
    for (n, replica) in replicas.iter().enumerate() {
        let counted = calls_counted(replica, &key).await;
        assert!(counted >= 5, "replica {n} served {counted} of the 30 calls");
    }
    // Every replica's calls are in the one history (each writes its batch within 250 ms).
    within(
        SECOND * 3,
        "the 30 calls are in the one history",
        async || {
            let history = admin.get("/api/v1/calls?tool=fx__echo&limit=100").await;
            history.body["calls"].as_array().map(Vec::len) == Some(30)
        },
    )
    .await;

    // Revoked through the balancer: refused by every replica.
    Api::new(&replicas[1])
        .with_token(Some(&key))
        .revoke_key("through the balancer")
        .await;
    within(
        SECOND,
        "every replica refuses the revoked key",
        async || {
            let mut refused = 0;
            for replica in &replicas {
                refused += usize::from(
                    modern_call(&replica.mcp_url(), &key, 99).await.0 == StatusCode::UNAUTHORIZED,
                );
            }
            refused == replicas.len()
        },
    )
    .await;
    for n in 0..6 {
        let (status, _) = modern_call(&mcp, &key, n).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "call {n} after the revocation"
        );
    }
}

/// A handle on session `id` at `gateway`, with `key`.
fn session_at(gateway: &ServeProcess, id: &str, key: &str) -> RawSession {
    RawSession {
        client: common::http::client(),
        url: gateway.mcp_url(),
        session_id: Some(id.to_owned()),
        next_id: 1,
        headers: vec![("Authorization".into(), format!("Bearer {key}"))],
    }
}

/// The official Python SDK client (`sdk_session_replicas.py`) with one session-era session
/// through nginx in front of three gateways: its requests are served by all three, and the
/// session goes on, unnoticed by the client, after the gateway that opened it is killed.
#[tokio::test]
async fn a_session_era_session_lives_on_any_replica_and_through_a_kill() {
    let url = fresh_database().await;
    let yaml = yaml(&url).replace("security:", "auth:\n  enabled: true\nsecurity:");
    let mut replicas: Vec<Option<ServeProcess>> = (0..3)
        .map(|n| {
            let env: &[(&str, &str)] = if n == 0 { &admin_env() } else { &[] };
            Some(ServeProcess::start_in(ConfigDir::new(&yaml), env))
        })
        .collect();
    let live = |replicas: &[Option<ServeProcess>]| -> Vec<usize> {
        (0..replicas.len())
            .filter(|n| replicas[*n].is_some())
            .collect()
    };
    let balancer = common::balancer::Balancer::start(
        &replicas
            .iter()
            .flatten()
            .map(|replica| replica.base.trim_start_matches("http://").to_owned())
            .collect::<Vec<_>>(),
    );
    let admin = Api::logged_in(replicas[0].as_ref().unwrap()).await;
    let key = admin.create_key("session client").await;
    let other_key = admin.create_key("another client").await;

    let mut client = std::process::Command::new(common::python())
        .arg(common::clients_dir().join("sdk_session_replicas.py"))
        .args([
            "--url",
            &balancer.url("/mcp"),
            "--key",
            &key,
            "--calls",
            "6",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start the Python SDK client");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        client.stdout.take().expect("the client's stdout"),
    ));
    let mut next_report = move || -> serde_json::Value {
        let line = lines
            .next()
            .expect("the client printed a report")
            .expect("the client's stdout reads");
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"))
    };
    let check = |report: &serde_json::Value, first: u64| -> String {
        let ids = report["session_ids"].as_array().expect("session ids");
        assert_eq!(ids.len(), 1, "one session throughout: {report}");
        assert_eq!(
            report["without_session"], 1,
            "one initialize, never another: {report}"
        );
        let statuses = report["statuses"].as_array().expect("statuses");
        assert!(
            statuses
                .iter()
                .all(|status| status.as_u64().is_some_and(|s| s < 300)),
            "{report}"
        );
        let texts = report["texts"].as_array().expect("texts");
        for (n, text) in texts.iter().enumerate() {
            let wanted = format!("\"n\":{}", first + n as u64);
            assert!(
                text.as_str()
                    .is_some_and(|text| text.replace(' ', "").contains(&wanted)),
                "call {n}: {report}"
            );
        }
        ids[0].as_str().unwrap().to_owned()
    };
    let before = next_report();
    let session = check(&before, 0);

    // Every replica served some of the session's requests; the one that opened it is the
    // one that continued none.
    let mut opener = None;
    for n in live(&replicas) {
        let replica = replicas[n].as_ref().unwrap();
        let continued = metric(&replica.base, Some(&key), "mcps_sessions_continued_total").await;
        let open = metric(&replica.base, Some(&key), "mcps_sessions ").await;
        assert_eq!(open, 1, "replica {n} holds the session");
        if continued == 0 {
            assert!(opener.is_none(), "only one replica opened the session");
            opener = Some(n);
        }
    }
    let opener = opener.expect("a replica opened the session");

    // Another credential cannot use it, on any replica, even one that has it.
    for n in live(&replicas) {
        let reply = session_at(replicas[n].as_ref().unwrap(), &session, &other_key)
            .request("tools/list", json!({}))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "replica {n}: {reply:?}"
        );
    }

    // The replica that opened it dies; the session goes on on the others.
    let (status, _) = replicas[opener]
        .take()
        .unwrap()
        .stop(nix::sys::signal::Signal::SIGKILL);
    eprintln!("killed replica {opener}: {status}");
    std::io::Write::write_all(client.stdin.as_mut().unwrap(), b"go\n").expect("tell the client");
    let after = next_report();
    assert_eq!(check(&after, 6), session, "the same session after the kill");
    let ended = client.wait().expect("the client ends");
    assert!(ended.success(), "the client failed: {ended}");

    // The client ended its session: it is gone from every replica left.
    within(SECOND, "the ended session is gone everywhere", async || {
        let mut gone = 0;
        for n in live(&replicas) {
            let reply = session_at(replicas[n].as_ref().unwrap(), &session, &key)
                .request("tools/list", json!({}))
                .await;
            gone += usize::from(reply.status == StatusCode::NOT_FOUND);
        }
        gone == live(&replicas).len()
    })
    .await;
}

/// On one gateway with its SQLite registry, a session-era session goes on after the gateway
/// restarts (a rolling update, say), with the client none the wiser; one its client ended
/// before does not come back.
#[tokio::test]
async fn a_session_goes_on_after_its_gateway_restarts() {
    let yaml = format!(
        "security:\n  allow_private_urls: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start(&yaml);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let ended = RawSession::open(&gateway.mcp_url()).await;
    ended.close().await;
    let reply = session.call("fx__echo", json!({"n": 1})).await;
    assert!(reply["result"].is_object(), "{reply}");
    let (status, config) = gateway.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{status}");

    let gateway = ServeProcess::start_in(config, &[]);
    session.url = gateway.mcp_url();
    let reply = session.call("fx__echo", json!({"n": 2})).await;
    assert!(reply["result"].is_object(), "{reply}\n{}", gateway.log());
    assert_eq!(
        metric(&gateway.base, None, "mcps_sessions_continued_total").await,
        1
    );
    let mut ended = session_at(&gateway, ended.session_id.as_deref().unwrap(), "none");
    ended.headers.clear();
    let reply = ended.request("tools/list", json!({})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
}

/// Requests a gateway puts to a session-era client mid-call (sampling, elicitation, roots),
/// behind nginx in front of three gateways: the client's answer lands on any of them and is
/// passed on to the one that asked. Two official Python SDK clients at once, each getting
/// only its own answers, with upstreams of both eras (the Python SDK's, over HTTP).
/// (A request put on rmcp's way, for a call that takes no lane, is still answered only where
/// it was asked; see `registry/answers.rs`.)
#[tokio::test]
async fn a_clients_answers_reach_the_replica_that_asked() {
    let url = fresh_database().await;
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    let upstream_url = upstream.url("/mcp");
    let yaml = format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\nsecurity:\n  allow_private_urls: true\nupstreams:\n  legacy:\n    url: {upstream_url:?}\n    protocol: legacy\n  modern:\n    url: {upstream_url:?}\n    protocol: modern\n"
    );
    let replicas: Vec<ServeProcess> = (0..3)
        .map(|_| ServeProcess::start_in(ConfigDir::new(&yaml), &[]))
        .collect();
    for replica in &replicas {
        replica.wait_ready(Duration::from_secs(30));
    }
    let balancer = common::balancer::Balancer::start(
        &replicas
            .iter()
            .map(|replica| replica.base.trim_start_matches("http://").to_owned())
            .collect::<Vec<_>>(),
    );
    // Answers small enough for a notification, and sampling answers of 20 KB, which wait in
    // the registry for the gateway that asked. Calls with a progress token go rmcp's way,
    // whose requests to the client the gateways name as they do their own.
    let runs: [&[&str]; 5] = [
        &["--prefix", "legacy__"],
        &["--prefix", "modern__"],
        &["--prefix", "legacy__", "--padding", "20000"],
        &["--prefix", "legacy__", "--progress"],
        &["--prefix", "modern__", "--progress", "--padding", "20000"],
    ];
    for run in runs {
        // Round robin: most answers land on a replica that did not ask.
        let output = std::process::Command::new(common::python())
            .arg(common::clients_dir().join("sdk_client_requests.py"))
            .args(["--mode", "legacy", "--url", &balancer.url("/mcp")])
            .args(["--clients", "2"])
            .args(run)
            .output()
            .expect("run the Python SDK clients");
        assert!(
            output.status.success(),
            "{run:?}:\n{}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            replicas
                .iter()
                .map(ServeProcess::log)
                .collect::<Vec<_>>()
                .join("\n----\n"),
        );
    }
}

/// A 2026-07-28 call to `gateway`'s `legacy__greet` (a session-era upstream that asks the
/// client's name mid-call), with `extra` parameters (a retry's state and answers).
async fn greet(gateway: &ServeProcess, extra: serde_json::Value) -> serde_json::Value {
    common::http::modern_tool_call(&gateway.mcp_url(), "legacy__greet", extra).await
}

/// The question a 2026-07-28 call was asked: its state, and the answer "eve".
fn asked(reply: &serde_json::Value) -> (String, serde_json::Value) {
    assert_eq!(reply["result"]["resultType"], "input_required", "{reply}");
    let (key, _) = reply["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.iter().next())
        .expect("one question");
    let state = reply["result"]["requestState"].as_str().expect("a state");
    let answer = json!({key.clone(): {"action": "accept", "content": {"name": "eve"}}});
    (state.to_owned(), answer)
}

#[tokio::test]
async fn a_retry_reaches_the_replica_that_parked_its_call_or_says_it_stopped() {
    let url = fresh_database().await;
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    let yaml = format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\nsecurity:\n  allow_private_urls: true\nupstreams:\n  legacy:\n    url: {:?}\n    protocol: legacy\n    call_timeout_secs: 3\n",
        upstream.url("/mcp")
    );
    let a = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    let b = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    for replica in [&a, &b] {
        replica.wait_ready(Duration::from_secs(30));
    }

    // Parked on A, retried on B: B passes the retry to A and answers with its result.
    let (state, answer) = asked(&greet(&a, json!({})).await);
    // Not with another gateway's name in it: B refuses that at once, without passing it on.
    let (_, sealed) = state
        .split_once('~')
        .expect("a gateway's name, then the state");
    let renamed = format!("0123456789ab~{sealed}");
    let start = Instant::now();
    let forged = greet(
        &b,
        json!({"requestState": renamed, "inputResponses": answer}),
    )
    .await;
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let done = greet(&b, json!({"requestState": state, "inputResponses": answer})).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, eve!",
        "{done}"
    );
    // A state resumes once, wherever it is retried: A's refusal comes back through B.
    for replica in [&b, &a] {
        let again = greet(
            replica,
            json!({"requestState": state, "inputResponses": answer}),
        )
        .await;
        assert_eq!(again["error"]["code"], -32602, "{again}");
        let message = again["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("already used"), "{again}");
    }

    // Parked on A, and A is killed: the retry on B fails with an error that says why, at the
    // upstream's call deadline.
    let (state, answer) = asked(&greet(&a, json!({})).await);
    a.stop(nix::sys::signal::Signal::SIGKILL);
    let start = Instant::now();
    let failed = greet(&b, json!({"requestState": state, "inputResponses": answer})).await;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not answer its retry") && message.contains("may have stopped"),
        "{failed}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

/// A replica gives up its copy of a session it took in once the copy has had no request for
/// `timeouts.session_copy_idle_secs`, freeing its seat; the session's next request there
/// takes it in again.
#[tokio::test]
async fn a_quiet_copy_is_given_up_and_taken_in_again() {
    let url = fresh_database().await;
    let yaml = format!(
        "{}timeouts:\n  session_sleep_secs: 0.5\n  session_copy_idle_secs: 1\n",
        yaml(&url)
    );
    let a = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    let b = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    for replica in [&a, &b] {
        replica.wait_ready(Duration::from_secs(30));
    }
    let mut opened = RawSession::open(&a.mcp_url()).await;
    let id = opened.session_id.clone().expect("a session id");
    let mut on_b = RawSession {
        url: b.mcp_url(),
        ..opened.handle()
    };
    let echo = async |session: &mut RawSession, text: &str| {
        let reply = session.call("fx__echo", json!({"text": text})).await;
        assert!(reply["result"].is_object(), "{reply}");
    };
    echo(&mut on_b, "taken in").await;
    assert_eq!(
        metric(&b.base, None, "mcps_sessions_continued_total").await,
        1
    );

    within(SECOND * 10, "B gives up its copy", async || {
        metric(&b.base, None, "mcps_session_copies_given_up_total").await == 1
    })
    .await;
    // A, which opened it, keeps it; B takes it in again for its next request.
    echo(&mut opened, "on A").await;
    echo(&mut on_b, "taken in again").await;
    assert_eq!(
        metric(&b.base, None, "mcps_sessions_continued_total").await,
        2
    );
    assert_eq!(
        metric(&a.base, None, "mcps_session_copies_given_up_total").await,
        0
    );
    assert_eq!(on_b.session_id.as_deref(), Some(id.as_str()));
}
