//! An upstream behind OAuth, served by the official Python SDK (its authorization server
//! endpoints and its bearer check; `tests/fixtures/python/oauth_server.py` keeps tokens in
//! memory, expiring within seconds): the gateway waits for a sign-in instead of failing,
//! signs in through an administrator's browser, refreshes before expiry without a failed
//! call, keeps no token in clear in its database, restores its sign-in after a restart, and
//! waits for a new sign-in when the tokens are revoked.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::common::{
    api::{Api, admin_env},
    fixtures::Listening,
    http::{client, get_json, metrics_text, modern_post},
    process::{ConfigDir, ServeProcess, run_mcps},
    python,
};

/// The Python SDK's OAuth-protected server, killed on drop.
pub(crate) struct OAuthServer {
    process: Listening,
    base: String,
}

impl OAuthServer {
    pub fn start(token_seconds: u32) -> Self {
        Self::start_over(token_seconds, "streamable-http")
    }

    /// The same over `transport` (`streamable-http`, or `sse` for the legacy transport).
    pub fn start_over(token_seconds: u32, transport: &str) -> Self {
        let mut command = Command::new(python());
        command
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/oauth_server.py"),
            )
            .args(["--token-seconds", &token_seconds.to_string()])
            .args(["--transport", transport]);
        let process = Listening::spawn(command, "the OAuth fixture");
        let base = process.url.rsplit_once('/').expect("a path").0.to_owned();
        Self { process, base }
    }

    /// Its MCP endpoint.
    pub fn url(&self) -> &str {
        &self.process.url
    }

    /// The user the next authorization signs in.
    pub async fn next_subject(&self, name: &str) {
        let answer = client()
            .post(format!("{}/test/next-subject", self.base))
            .body(name.to_owned())
            .send()
            .await
            .expect("set the next subject");
        assert!(answer.status().is_success(), "{answer:?}");
    }

    /// Makes refresh grants fail (`down`) as a token endpoint that is down would, or work again.
    pub async fn refresh_down(&self, down: bool) {
        let answer = client()
            .post(format!("{}/test/refresh-down", self.base))
            .body(if down { "1" } else { "0" })
            .send()
            .await
            .expect("switch the refresh grants");
        assert!(answer.status().is_success(), "{answer:?}");
    }

    pub async fn issued(&self) -> Value {
        client()
            .get(format!("{}/test/tokens", self.base))
            .send()
            .await
            .expect("read the issued tokens")
            .json()
            .await
            .expect("JSON")
    }

    async fn revoke_everything(&self) {
        client()
            .post(format!("{}/test/revoke", self.base))
            .send()
            .await
            .expect("revoke");
    }
}

/// Calls `remote__whoami` through the gateway (2026-07-28): its text, or the error's message.
async fn whoami(gateway: &ServeProcess) -> Result<String, String> {
    let reply: Value = modern_post(&gateway.mcp_url(), "tools/call", Some("remote__whoami"))
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "remote__whoami", "arguments": {},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                                 "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                                 "io.modelcontextprotocol/clientCapabilities": {}}}
        }))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("a JSON answer");
    match (&reply["result"], &reply["error"]) {
        (result, Value::Null) if result["isError"] != true => Ok(result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()),
        (result, Value::Null) => Err(result["content"][0]["text"].to_string()),
        (_, error) => Err(error["message"].as_str().unwrap_or_default().to_owned()),
    }
}

/// Signs the gateway in to `remote` as an administrator with a browser would.
pub(crate) async fn sign_in(api: &Api) {
    let answer = api
        .post("/api/v1/mcp/services/remote/oauth/authorize", json!({}))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let url = answer.body["authorization_url"].as_str().expect("a URL");
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = no_redirects.get(url).send().await.expect("authorize");
    assert!(redirect.status().is_redirection(), "{redirect:?}");
    let callback = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.contains("/oauth/callback?"), "{callback}");
    let page = client().get(&callback).send().await.expect("callback");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("signed in"));
    // A callback is good once.
    let again = client()
        .get(&callback)
        .send()
        .await
        .expect("callback again");
    assert_eq!(again.status(), 400);
}

/// Every file of the registry (the database, its write-ahead log), as bytes.
pub(crate) fn registry_bytes(config: &ConfigDir) -> Vec<u8> {
    let data = config.dir.path().join("data");
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&data).expect("the data directory") {
        let path = entry.expect("an entry").path();
        if path.to_string_lossy().contains("mcps.db") {
            bytes.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    bytes
}

/// A gateway in front of `server` as upstream `remote` (`extra`: more of its entry), once the
/// upstream waits for a sign-in that its reason says how to make; and its administrator.
async fn gateway_waiting_for(server: &OAuthServer, extra: &str) -> (ServeProcess, Api) {
    let yaml = format!(
        "upstreams:\n  remote:\n    url: {:?}\n    oauth: {{}}\n{extra}",
        server.url()
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let waiting = api.wait_for_state("remote", "needs_authorization").await;
    assert!(
        waiting["reason"]
            .as_str()
            .unwrap()
            .contains("/api/v1/mcp/services/remote/oauth/authorize"),
        "{waiting}"
    );
    (gateway, api)
}

#[tokio::test]
async fn an_oauth_upstream_signs_in_refreshes_restores_and_waits_when_revoked() {
    let server = OAuthServer::start(4);
    // Not signed in: it waits, and a call says how to sign it in.
    let (gateway, api) = gateway_waiting_for(&server, "").await;
    let refused = whoami(&gateway).await.expect_err("not signed in");
    assert!(refused.contains("oauth/authorize"), "{refused}");
    let health = api.get("/api/v1/system/status").await;
    assert_eq!(
        health.body["upstreams"]["needs_authorization"], 1,
        "{health:?}"
    );
    let metrics = metrics_text(&gateway.base).await;
    let waiting_gauge = metrics.lines().find(|line| {
        line.starts_with("mcps_upstream_state{")
            && line.contains("upstream=\"remote\"")
            && line.contains("state=\"needs_authorization\"")
    });
    assert!(
        waiting_gauge.is_some_and(|line| line.ends_with(" 1")),
        "{metrics}"
    );

    // Under a plain-http address the gateway publishes no client metadata document.
    let document = client()
        .get(format!("{}/oauth/client-metadata.json", gateway.base))
        .send()
        .await
        .unwrap();
    assert_eq!(document.status(), 404);

    sign_in(&api).await;
    api.wait_for_state("remote", "ready").await;

    // Across three lifetimes of its 4-second tokens, no call fails: they are refreshed
    // before they expire.
    let until = Instant::now() + Duration::from_secs(10);
    let mut calls = 0;
    while Instant::now() < until {
        assert_eq!(
            whoami(&gateway).await,
            Ok("alice".to_owned()),
            "call {calls}"
        );
        calls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let issued = server.issued().await;
    assert!(issued["refresh_grants"].as_u64().unwrap() >= 2, "{issued}");

    // The database holds none of the tokens in clear.
    let stored = registry_bytes(&gateway.config);
    let tokens: Vec<&str> = issued["issued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token.as_str().unwrap())
        .collect();
    assert!(!tokens.is_empty());
    for token in &tokens {
        assert!(
            !stored
                .windows(token.len())
                .any(|window| window == token.as_bytes()),
            "a token is in the database in clear"
        );
    }

    // Restarted on the same database, it is signed in at once.
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");
    let gateway = ServeProcess::start_in(config, &admin_env());
    let api = Api::logged_in(&gateway).await;
    api.wait_for_state("remote", "ready").await;
    assert_eq!(whoami(&gateway).await, Ok("alice".to_owned()));

    // Every token revoked at the authorization server: the next call fails with how to sign
    // in again, and the upstream waits for it.
    server.revoke_everything().await;
    let refused = whoami(&gateway).await.expect_err("revoked");
    assert!(refused.contains("oauth/authorize"), "{refused}");
    api.wait_for_state("remote", "needs_authorization").await;
    sign_in(&api).await;
    api.wait_for_state("remote", "ready").await;
    assert_eq!(whoami(&gateway).await, Ok("alice".to_owned()));
}

#[tokio::test]
async fn a_client_secret_given_through_the_api_is_sealed_at_rest_and_never_shown() {
    let secret = "client-secret-not-in-clear-4711";
    let yaml = "security:\n  allow_private_urls: true\nupstreams: {}\n";
    let gateway = ServeProcess::start_in(ConfigDir::new(yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let created = api
        .post(
            "/api/v1/mcp/services",
            json!({"name": "linear", "url": "http://127.0.0.1:9/mcp",
                   "oauth": {"client_id": "gateway", "client_secret": secret}}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["oauth"]["client_secret"], "********");
    let shown = api.get("/api/v1/mcp/services/linear").await;
    assert_eq!(shown.body["oauth"]["client_secret"], "********");
    assert!(!shown.body.to_string().contains(secret));
    let stored = registry_bytes(&gateway.config);
    assert!(
        !stored
            .windows(secret.len())
            .any(|window| window == secret.as_bytes()),
        "the client secret is in the database in clear"
    );
    // Read back after a restart: the sealed secret opens (the service starts as before).
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success());
    let gateway = ServeProcess::start_in(config, &admin_env());
    let api = Api::logged_in(&gateway).await;
    let again = api.get("/api/v1/mcp/services/linear").await;
    assert_eq!(again.status, 200, "{again:?}");
    assert!(!gateway.log().contains(secret), "the secret was logged");
}

/// `mcps check` opens no registry: an OAuth upstream that is not signed in is reported as
/// waiting for a sign-in, not as failed.
#[test]
fn mcps_check_reports_an_upstream_waiting_for_a_sign_in() {
    let server = OAuthServer::start(3600);
    let config = ConfigDir::new(&format!(
        "upstreams:\n  remote:\n    url: {:?}\n    oauth: {{}}\n",
        server.url()
    ));
    let (status, stdout, stderr) = run_mcps(&config.path(), &["check"]);
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("remote") && stdout.contains("needs authorization"),
        "{stdout}"
    );
    assert!(stdout.contains("oauth/authorize"), "{stdout}");
}

/// An authorization server that takes Client ID Metadata Documents, in front of an upstream
/// that asks for a sign-in: just enough of both for the gateway to start one.
async fn documents_taking_server() -> String {
    use axum::{Json, Router, http::StatusCode, response::IntoResponse, routing::get};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let challenge =
        format!("Bearer resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp\"");
    let resource = json!({"resource": format!("{base}/mcp"), "authorization_servers": [base]});
    let server = json!({
        "issuer": base, "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"), "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "client_id_metadata_document_supported": true,
    });
    let app = Router::new()
        .route(
            "/mcp",
            axum::routing::any(move || async move {
                (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response()
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(move || async move { Json(resource) }),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(server) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("{base}/mcp")
}

/// Under an https public URL the gateway publishes its own Client ID Metadata Document and
/// signs in with it as its client id where the authorization server takes one.
#[tokio::test]
async fn the_gateway_signs_in_with_its_own_client_metadata_document() {
    let upstream = documents_taking_server().await;
    let yaml = format!(
        "server:\n  public_url: https://gateway.example\nupstreams:\n  remote:\n    url: {upstream:?}\n    oauth: {{}}\n"
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    api.wait_for_state("remote", "needs_authorization").await;
    let answer = api
        .post("/api/v1/mcp/services/remote/oauth/authorize", json!({}))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let url = url::Url::parse(answer.body["authorization_url"].as_str().unwrap()).unwrap();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let client_id = "https://gateway.example/oauth/client-metadata.json";
    assert_eq!(query["client_id"], client_id, "{url}");
    assert_eq!(
        query["redirect_uri"],
        "https://gateway.example/oauth/callback"
    );

    let document = get_json(&format!("{}/oauth/client-metadata.json", gateway.base)).await;
    assert_eq!(document["client_id"], client_id, "{document}");
    assert_eq!(
        document["redirect_uris"],
        json!([query["redirect_uri"]]),
        "{document}"
    );
    assert_eq!(document["token_endpoint_auth_method"], "none");
}

/// A legacy SSE upstream behind OAuth (the Python SDK's SSE transport): the gateway reads the
/// 401's challenge there too, waits for a sign-in, and then calls through with its token.
#[tokio::test]
async fn an_sse_upstream_behind_oauth_is_signed_in_from_its_challenge() {
    let server = OAuthServer::start_over(3600, "sse");
    let (gateway, api) = gateway_waiting_for(&server, "    transport: sse\n").await;
    server.next_subject("sse-user").await;
    sign_in(&api).await;
    api.wait_for_state("remote", "ready").await;
    assert_eq!(whoami(&gateway).await, Ok("sse-user".to_owned()));
}

/// A token endpoint that is down for a while is not a refused sign-in: calls fail meanwhile,
/// the upstream is never put back to `needs_authorization`, and once refreshing works again
/// calls go through with no new sign-in.
#[tokio::test]
async fn a_refresh_that_fails_for_a_while_asks_nobody_to_sign_in_again() {
    let server = OAuthServer::start(2);
    let (gateway, api) = gateway_waiting_for(&server, "").await;
    sign_in(&api).await;
    api.wait_for_state("remote", "ready").await;
    assert_eq!(whoami(&gateway).await, Ok("alice".to_owned()));

    server.refresh_down(true).await;
    // Past the 2-second token's life: calls fail, and the upstream keeps waiting for the
    // authorization server, not for a person.
    let until = Instant::now() + Duration::from_secs(4);
    let mut failed = 0;
    while Instant::now() < until {
        if whoami(&gateway).await.is_err() {
            failed += 1;
        }
        let state = api.get("/api/v1/mcp/services/remote").await;
        assert_ne!(state.body["state"], "needs_authorization", "{state:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(failed > 0, "no call needed the refresh");

    server.refresh_down(false).await;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if whoami(&gateway).await == Ok("alice".to_owned()) {
            break;
        }
        assert!(
            Instant::now() < until,
            "calls did not come back: {}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
