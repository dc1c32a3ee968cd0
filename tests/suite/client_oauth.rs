//! The gateway as an OAuth protected resource (`auth.oauth`): an identity provider's JWT
//! access tokens are checked against its published keys (a PyJWT issuer whose RSA keys the
//! fixture generates and rotates, `tests/fixtures/python/jwt_issuer.py`), with the challenge
//! and the metadata document of RFC 9728; API keys keep working beside them.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use crate::common::{
    api::{Api, admin_env},
    clients_dir, example_bin,
    fixtures::Listening,
    http::{client, get_json, modern_post},
    line_peer::LinePeer,
    mcp_remote,
    process::{ConfigDir, ServeProcess},
    python,
};

pub(crate) const AUDIENCE: &str = "https://mcp.example.test/mcp";
pub(crate) const SCOPE: &str = "mcp:tools";

/// The JWT issuer, killed on drop.
pub(crate) struct Issuer {
    process: Listening,
}

impl Issuer {
    pub fn start() -> Self {
        let mut command = Command::new(python());
        command.arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/python/jwt_issuer.py"),
        );
        Self {
            process: Listening::spawn(command, "the JWT issuer"),
        }
    }

    /// Its issuer identifier and base URL.
    pub fn base(&self) -> &str {
        &self.process.url
    }

    /// A token for `AUDIENCE` with `SCOPE`, changed by `overrides`.
    pub async fn mint(&self, overrides: Value) -> String {
        let mut request = json!({"sub": "alice", "aud": AUDIENCE, "scope": SCOPE});
        for (key, value) in overrides.as_object().unwrap() {
            request[key] = value.clone();
        }
        client()
            .post(format!("{}/mint", self.base()))
            .json(&request)
            .send()
            .await
            .expect("mint")
            .text()
            .await
            .unwrap()
    }

    /// Who its authorization endpoint signs in from now on.
    pub async fn next_subject(&self, name: &str) {
        let answer = client()
            .post(format!("{}/next-subject", self.base()))
            .body(name.to_owned())
            .send()
            .await
            .expect("set the next subject");
        assert!(answer.status().is_success(), "{answer:?}");
    }

    async fn rotate(&self) {
        client()
            .post(format!("{}/rotate", self.base()))
            .send()
            .await
            .expect("rotate");
    }
}

/// A 2026-07-28 `tools/list` with `token`: its status and `WWW-Authenticate`.
async fn list_with(gateway: &ServeProcess, token: Option<&str>) -> (u16, String) {
    let mut request = modern_post(&gateway.mcp_url(), "tools/list", None).json(&json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                             "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                             "io.modelcontextprotocol/clientCapabilities": {}}}
    }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("tools/list");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), challenge)
}

#[tokio::test]
async fn the_identity_providers_tokens_are_checked_and_api_keys_still_work() {
    let issuer = Issuer::start();
    let yaml = format!(
        "auth:\n  oauth:\n    issuer: {:?}\n    audience: {AUDIENCE:?}\n    scopes: [{SCOPE:?}]\nupstreams: {{}}\n",
        issuer.base()
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());

    // No token: 401, pointing at the metadata, which names the issuer.
    let (status, challenge) = list_with(&gateway, None).await;
    assert_eq!(status, 401);
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", gateway.base);
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    let metadata = get_json(&metadata_url).await;
    assert_eq!(metadata["resource"], AUDIENCE, "{metadata}");
    assert_eq!(metadata["authorization_servers"], json!([issuer.base()]));
    assert_eq!(metadata["scopes_supported"], json!([SCOPE]));
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));

    // A good token passes.
    let good = issuer.mint(json!({})).await;
    assert_eq!(list_with(&gateway, Some(&good)).await.0, 200);
    assert_eq!(list_with(&gateway, Some(&good)).await.0, 200, "taken again");

    // Each bad one gets 401 with `invalid_token`, or 403 for a missing scope.
    for (what, overrides) in [
        ("a bad signature", json!({"key": "stranger"})),
        (
            "another audience",
            json!({"aud": "https://elsewhere.test/mcp"}),
        ),
        ("an expired token", json!({"exp_in": -300})),
    ] {
        let token = issuer.mint(overrides).await;
        let (status, challenge) = list_with(&gateway, Some(&token)).await;
        assert_eq!(status, 401, "{what}");
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains(&metadata_url),
            "{what}: {challenge}"
        );
    }
    let narrow = issuer.mint(json!({"scope": "other"})).await;
    let (status, challenge) = list_with(&gateway, Some(&narrow)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains(SCOPE),
        "{challenge}"
    );
    let (status, _) = list_with(&gateway, Some("not-a-token")).await;
    assert_eq!(status, 401);

    // The issuer rotates its keys: a token of the new key is taken (the keys are fetched
    // again), one of the retired key no longer is.
    issuer.rotate().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = issuer.mint(json!({})).await;
    assert_eq!(list_with(&gateway, Some(&fresh)).await.0, 200);
    // One taken before with the retired key (and remembered since) is checked again: refused.
    let (status, challenge) = list_with(&gateway, Some(&good)).await;
    assert_eq!(status, 401, "{challenge}");
    let retired = issuer.mint(json!({"key": "retired"})).await;
    let (status, challenge) = list_with(&gateway, Some(&retired)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token"), "{challenge}");

    // API keys work beside the identity provider's tokens.
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("beside").await;
    assert_eq!(list_with(&gateway, Some(&key)).await.0, 200);

    // The REST surface takes the tokens too, for what a user without a registry account may
    // use: who they are and the tools, not keys or services.
    let as_user = api.with_token(Some(&fresh));
    let me = as_user.get("/api/v1/auth/me").await;
    assert_eq!(me.status, 200, "{me:?}");
    assert_eq!(me.body["username"], "alice", "{me:?}");
    assert_eq!(me.body["authenticated_with"], "identity_provider");
    assert_eq!(as_user.get("/api/v1/tools").await.status, 200);
    let keys = as_user
        .post("/api/v1/auth/keys", json!({"name": "mine"}))
        .await;
    assert_eq!(keys.status, 403, "{keys:?}");
    let services = as_user.get("/api/v1/mcp/services").await;
    assert_eq!(services.status, 403, "{services:?}");
    let retired = api.with_token(Some(&retired)).get("/api/v1/auth/me").await;
    assert_eq!(retired.status, 401, "{retired:?}");
}

/// A gateway whose clients sign in at `issuer` (its URL, its audience, is the second), in
/// front of the echo upstream.
fn gateway_behind(issuer: &Issuer) -> (ServeProcess, String) {
    let port = crate::common::free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let yaml = format!(
        "auth:\n  oauth:\n    issuer: {:?}\n    audience: {url:?}\n    scopes: [{SCOPE:?}]\nupstreams:\n  echo:\n    command: {:?}\n",
        issuer.base(),
        example_bin("echo_upstream").display().to_string()
    );
    let gateway = ServeProcess::start_listening(
        ConfigDir::new(&yaml),
        &admin_env(),
        &format!("127.0.0.1:{port}"),
    );
    (gateway, url)
}

/// An MCP SDK client with its own OAuth support (the Python SDK's `OAuthClientProvider`)
/// signs in end to end: the gateway's 401 and metadata send it to the issuer, where it
/// registers, authorizes with PKCE and gets a JWT for the gateway's URL, which the gateway
/// accepts; in both eras.
#[test]
fn an_sdk_client_signs_in_through_the_identity_provider_by_itself() {
    let issuer = Issuer::start();
    let (_gateway, url) = gateway_behind(&issuer);
    for mode in ["legacy", "2026-07-28"] {
        let output = std::process::Command::new(python())
            .arg(clients_dir().join("sdk_oauth_client.py"))
            .args(["--url", &url, "--mode", mode, "--tool", "echo__echo"])
            .output()
            .expect("run the SDK client");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
        assert_eq!(report["signed_in"], true, "{mode}: {report}");
        assert_eq!(report["tools"], json!(["echo__echo"]), "{mode}: {report}");
        assert!(
            report["result"].as_str().unwrap().contains("signed in"),
            "{mode}: {report}"
        );
    }
}

/// mcp-remote, the stdio bridge through which desktop clients reach a remote server, signs in
/// by itself as a desktop client's user would: the gateway's 401 and metadata send it to the
/// issuer, where it registers and asks its user to open the authorization URL. The test opens
/// it as a browser would (following the issuer's redirect to mcp-remote's callback); then the
/// client's calls go through with the JWT mcp-remote got.
#[test]
fn mcp_remote_signs_in_through_the_identity_provider_as_a_desktop_client_does() {
    let issuer = Issuer::start();
    let (gateway, url) = gateway_behind(&issuer);
    let state = tempfile::tempdir().expect("a directory for mcp-remote");
    // No browser of the machine's opens the URL: the test does.
    let mut command = mcp_remote(&url, state.path());
    command
        .args(["--transport", "http-only"])
        .stderr(Stdio::piped());
    let mut remote = LinePeer::spawn(command);
    let stderr = remote.take_stderr().expect("piped stderr");
    let authorize = format!("{}/authorize?", issuer.base());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with(&authorize) {
                let opened = Command::new(python())
                    .args([
                        "-c",
                        "import sys, urllib.request; urllib.request.urlopen(sys.argv[1])",
                    ])
                    .arg(&line)
                    .status();
                assert!(
                    matches!(opened, Ok(status) if status.success()),
                    "{opened:?}"
                );
            }
        }
    });
    // Answered once the sign-in is done.
    let initialized = remote.exchange_within(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "desktop", "version": "1"}}})
        .to_string(),
        Duration::from_secs(60),
    );
    assert_eq!(
        initialized["result"]["serverInfo"]["name"],
        "mcps",
        "{initialized}\n{}",
        gateway.log()
    );
    remote.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
    let called = remote.exchange(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo__echo", "arguments": {"message": "from the desktop"}}})
        .to_string(),
    );
    assert_eq!(
        called["result"]["content"][0]["text"],
        "from the desktop",
        "{called}\n{}",
        gateway.log()
    );
}
