//! Password guessing is braked: after a few wrong passwords, logins for that user and from
//! that address get 429 with `Retry-After` without a password check, MCP calls keep their
//! latency meanwhile, the owner can still log in from an address it used before, and the
//! right password works again once the window is over.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    api::{ADMIN_PASSWORD, admin_env},
    fixture_upstream_yaml,
    http::{RawSession, client_from},
    process::{ConfigDir, ServeProcess},
};
use reqwest::StatusCode;
use serde_json::json;

const ATTACKER: &str = "127.0.0.2";
const OWNER: &str = "127.0.0.1";
/// How long failures are remembered. Long enough that the guessing below, with its password
/// checks (slow in a debug build on a busy machine), ends well inside it.
const WINDOW_SECS: u64 = 10;
/// The longest a lock lasts after the last wrong password. Long enough that the checks after
/// the guessing (a password check is slow in a debug build on a busy machine) run inside it.
const MAX_DELAY_SECS: u64 = 5;

fn gateway() -> ServeProcess {
    let yaml = format!(
        "auth:\n  login: {{free_failures: 5, max_delay_secs: {MAX_DELAY_SECS}, window_secs: {WINDOW_SECS}}}\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env())
}

async fn login(client: &reqwest::Client, base: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("login request")
}

/// Checks that `answer` is a 429 saying whose lock held it back.
async fn assert_throttled(answer: reqwest::Response, whose: &str) {
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = answer.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(whose), "{body}");
}

/// The median time of `count` calls, one after another.
async fn median_call(session: &mut RawSession, count: usize) -> Duration {
    let mut times = Vec::with_capacity(count);
    for n in 0..count {
        let started = Instant::now();
        let reply = session.call("fx__echo", json!({"n": n})).await;
        times.push(started.elapsed());
        assert!(reply["result"].is_object(), "{reply}");
    }
    times.sort();
    times[count / 2]
}

#[tokio::test]
async fn two_hundred_wrong_passwords_are_braked_and_calls_keep_their_latency() {
    let gateway = gateway();
    let base = gateway.base.clone();
    let owner = client_from(OWNER);
    assert_eq!(
        login(&owner, &base, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let before = median_call(&mut session, 100).await;

    // Eight guessers at once, 25 wrong passwords each.
    let guessers: Vec<_> = (0..8)
        .map(|guesser| {
            let base = base.clone();
            tokio::spawn(async move {
                let attacker = client_from(ATTACKER);
                let mut answers = Vec::new();
                for n in 0..25 {
                    let response = login(&attacker, &base, &format!("guess-{guesser}-{n}")).await;
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .map(|value| value.to_str().unwrap().parse::<u64>().unwrap());
                    answers.push((response.status(), retry_after));
                }
                answers
            })
        })
        .collect();
    let during = median_call(&mut session, 100).await;
    let mut answers = Vec::new();
    for guesser in guessers {
        answers.extend(guesser.await.unwrap());
    }

    assert_eq!(answers.len(), 200);
    let refused = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let checked = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(refused + checked, 200, "{answers:?}");
    // The free five, and one more each time a delay (at most MAX_DELAY_SECS) ran out meanwhile.
    assert!(
        checked <= 12,
        "{checked} passwords were checked: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
            .all(|(_, retry_after)| retry_after
                .is_some_and(|secs| (1..=MAX_DELAY_SECS).contains(&secs))),
        "every 429 says when to retry: {answers:?}"
    );
    assert!(
        during < before * 3 + Duration::from_millis(20),
        "calls slowed from {before:?} to {during:?} during the guessing"
    );
    assert!(
        gateway
            .log()
            .contains("wrong password; too many wrong passwords"),
        "the lock is logged:\n{}",
        gateway.log()
    );

    // The owner, from where it logged in before, is not locked out by the guesser.
    assert_eq!(
        login(&owner, &base, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    // From the guesser's address even the right password waits while a lock holds. The checks
    // above can outlast the lock on a busy machine (it ran out there before this line), so the
    // guesser goes on first: six more wrong passwords close the address however long ago the
    // last counted one was (within the window or past it, when the free five are free again).
    let attacker = client_from(ATTACKER);
    for n in 0..=5 {
        let status = login(&attacker, &base, &format!("again-{n}"))
            .await
            .status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    assert_throttled(
        login(&attacker, &base, ADMIN_PASSWORD).await,
        "from this address",
    )
    .await;
    // ...until the window is over.
    tokio::time::sleep(Duration::from_secs(WINDOW_SECS)).await;
    assert_eq!(
        login(&attacker, &base, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_user_guessed_at_from_many_addresses_is_locked_for_new_addresses() {
    let gateway = gateway();
    let base = gateway.base.clone();
    // Each guess from an address of its own: no address reaches its own limit.
    for n in 0..8 {
        let guesser = client_from(&format!("127.0.1.{}", n + 1));
        let status = login(&guesser, &base, "wrong").await.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    let newcomer = client_from("127.0.2.1");
    assert_throttled(
        login(&newcomer, &base, ADMIN_PASSWORD).await,
        "for this user",
    )
    .await;
    // The lock ends: at most max_delay_secs after the last wrong password.
    tokio::time::sleep(Duration::from_secs(MAX_DELAY_SECS)).await;
    assert_eq!(
        login(&newcomer, &base, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}
