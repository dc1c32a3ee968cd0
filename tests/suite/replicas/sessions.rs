//! A session-era session on gateways that share a registry: served by any of them, through
//! the kill or the restart of the one that opened it, and a quiet copy given up and taken in
//! again.

use std::time::Duration;

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::{RawSession, metric},
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
};
use reqwest::StatusCode;
use serde_json::json;

use super::{SECOND, within, yaml};

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
