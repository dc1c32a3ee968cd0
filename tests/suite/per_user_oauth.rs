//! `credentials: per-user` against the Python SDK's OAuth-protected server, whose `whoami`
//! tool answers the subject of the token it was called with: each API key signs in for
//! itself and sees only its own identity. A key that has not signed in is told where, as its
//! client understands it: the `-32042` URL elicitation error (session era), `input_required`
//! with a URL elicitation (2026-07-28), or an error naming the address. The address is the
//! gateway's own page, which sends on to the authorization server only after a login. The
//! calls, the questions and the 2026-07-28 retries that carry the answers go the gateway's
//! own way (the upstream's lane).

use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    api::{ADMIN_PASSWORD, Api, admin_env},
    browser::{Browser, location},
    http::{RawSession, client, modern_post},
    process::{ConfigDir, ServeProcess},
    ws,
};
use crate::{
    client_oauth::{AUDIENCE, Issuer, SCOPE},
    upstream_oauth::{OAuthServer, registry_bytes, sign_in},
};

const SIGN_IN_INPUT: &str = "mcps-sign-in";

/// A 2026-07-28 `tools/call` of `remote__whoami` with `key`, declaring `capabilities` and
/// answering the gateway's sign-in question with `answer`: the whole JSON-RPC message.
async fn call_modern(
    gateway: &ServeProcess,
    key: &str,
    capabilities: Value,
    answer: Option<Value>,
) -> Value {
    let mut params = json!({
        "name": "remote__whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                  "io.modelcontextprotocol/clientCapabilities": capabilities}
    });
    if let Some(answer) = answer {
        params["inputResponses"] = json!({ SIGN_IN_INPUT: answer });
    }
    modern_post(&gateway.mcp_url(), "tools/call", Some("remote__whoami"))
        .bearer_auth(key)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("a JSON answer")
}

/// The text of a successful `whoami`.
fn identity(message: &Value) -> &str {
    let result = &message["result"];
    assert!(
        result["isError"] != true && result["content"].is_array(),
        "{message}"
    );
    result["content"][0]["text"].as_str().expect("text")
}

/// The sign-in page's form, filled in as the administrator with `password`.
fn login_form(password: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("username", "admin")
        .append_pair("password", password)
        .finish()
}

/// What a user does in their browser with a sign-in address: logs in to the gateway, is sent
/// on to the authorization server, which approves at once and sends them back.
pub(crate) async fn sign_in_at(address: &str) {
    let browser = Browser::new();
    let page = browser.get(address).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("name=password"));
    let onward = browser.post_form(address, login_form(ADMIN_PASSWORD)).await;
    approve_at_authorization_server(&browser, onward).await;
}

/// The gateway sent `browser` on (`onward`) to the upstream's authorization server, which
/// approves at once and sends it back to the gateway's callback: the sign-in is done.
async fn approve_at_authorization_server(browser: &Browser, onward: reqwest::Response) {
    assert_eq!(onward.status(), StatusCode::SEE_OTHER, "{onward:?}");
    let approved = browser.get(&location(&onward)).await;
    let done = browser.get(&location(&approved)).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("You are signed in to remote")
    );
}

/// A gateway with auth in front of `server` as the per-user upstream `remote` (`extra`: more
/// of the config), signed in as the operator, whose sign-in serves the catalog and never a
/// key's call; and its administrator.
pub(crate) async fn per_user_gateway(server: &OAuthServer, extra: &str) -> (ServeProcess, Api) {
    let yaml = format!(
        "auth:\n  enabled: true\n{extra}upstreams:\n  remote:\n    url: {:?}\n    oauth:\n      credentials: per-user\n",
        server.url()
    );
    // Debug: each call's "call done" line says which way it went.
    let env = [admin_env()[0], ("RUST_LOG", "mcps=debug,rmcp=warn")];
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &env);
    let api = Api::logged_in(&gateway).await;
    server.next_subject("operator").await;
    sign_in(&api).await;
    api.wait_for_state("remote", "ready").await;
    (gateway, api)
}

#[tokio::test]
async fn each_api_key_signs_in_for_itself_and_sees_only_its_own_identity() {
    let server = OAuthServer::start(3600);
    let (gateway, api) = per_user_gateway(&server, "").await;
    let alice = api.create_key("alice-agent").await;
    let bob = api.create_key("bob-agent").await;
    let url_elicitations = json!({"elicitation": {"url": {}}});

    // A client that takes no URL elicitation: an error that names the address.
    let refused = call_modern(&gateway, &bob, json!({}), None).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/oauth/connect/"), "{refused}");

    // 2026-07-28 with URL elicitations: input_required, asking to open the address.
    let asked = call_modern(&gateway, &bob, url_elicitations.clone(), None).await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let question = &asked["result"]["inputRequests"][SIGN_IN_INPUT];
    assert_eq!(question["method"], "elicitation/create", "{asked}");
    assert_eq!(question["params"]["mode"], "url", "{asked}");
    let bob_address = question["params"]["url"].as_str().unwrap().to_owned();
    assert!(message.contains(&bob_address), "{message} / {bob_address}");

    // The session era with URL elicitations: the spec's URLElicitationRequired error.
    let mut session = RawSession::open_declaring(
        client(),
        &gateway.mcp_url(),
        &[("authorization", &format!("Bearer {alice}"))],
        url_elicitations.clone(),
    )
    .await;
    let required = session.call("remote__whoami", json!({})).await;
    assert_eq!(required["error"]["code"], -32042, "{required}");
    let elicitation = &required["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url", "{required}");
    assert!(
        elicitation["elicitationId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let alice_address = elicitation["url"].as_str().unwrap().to_owned();
    assert_ne!(alice_address, bob_address);

    // The authorization server's address the page sends one browser to, passed on to
    // another, signs nobody in (the phishing the spec warns of).
    let attacker = Browser::new();
    let onward = attacker
        .post_form(&alice_address, login_form(ADMIN_PASSWORD))
        .await;
    let victim = Browser::new();
    let approved = victim.get(&location(&onward)).await;
    let refused = victim.get(&location(&approved)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{refused:?}");
    assert!(refused.text().await.unwrap().contains("another browser"));

    // The address is the gateway's login, not the authorization server: a wrong password
    // goes nowhere, an unknown address is refused.
    let wrong = client()
        .post(&alice_address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(login_form("not-the-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown = client()
        .get(format!("{}/oauth/connect/0123456789abcdef", gateway.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Alice signs in, and her session's next call is hers.
    server.next_subject("alice").await;
    sign_in_at(&alice_address).await;
    let answer = session.call("remote__whoami", json!({})).await;
    assert_eq!(identity(&answer), "alice");

    // Bob signs in, and the retry carrying his acceptance goes on as his call.
    server.next_subject("bob").await;
    sign_in_at(&bob_address).await;
    let accepted = json!({"action": "accept"});
    let answer = call_modern(&gateway, &bob, url_elicitations.clone(), Some(accepted)).await;
    assert_eq!(identity(&answer), "bob");

    // Each sees only their own, whichever era, again and again.
    for _ in 0..3 {
        let answer = call_modern(&gateway, &alice, json!({}), None).await;
        assert_eq!(identity(&answer), "alice");
        let answer = call_modern(&gateway, &bob, json!({}), None).await;
        assert_eq!(identity(&answer), "bob");
    }
    let answer = session.call("remote__whoami", json!({})).await;
    assert_eq!(identity(&answer), "alice");
    // Over WebSocket too: the session is the key's that opened it.
    let mut socket = ws::open_as(&gateway.ws_url("/ws"), Some(&bob))
        .await
        .expect("WebSocket handshake");
    ws::initialize(&mut socket).await;
    let params = json!({"name": "remote__whoami", "arguments": {}});
    let answer = ws::request(&mut socket, 1, "tools/call", params).await;
    assert_eq!(identity(&answer), "bob");
    // Every call went the gateway's own way: the question as `input_required`, the retry
    // with bob's answer, and each call on its user's own connection, in every era and over
    // every door (the refusals are logged as failed calls, not counted here).
    gateway.calls_done(11).await;
    let log = gateway.log();
    assert_eq!(crate::common::lane_calls_in(&log), 11, "{log}");
    let refused = log.lines().filter(|line| line.contains("call failed"));
    assert!(refused.clone().count() >= 2, "{log}");
    assert!(
        refused.clone().all(|line| line.contains("lane=true")),
        "{log}"
    );

    // A declined sign-in is an error, not a wait.
    let carol = api.create_key("carol-agent").await;
    let declined = call_modern(
        &gateway,
        &carol,
        url_elicitations.clone(),
        Some(json!({"action": "decline"})),
    )
    .await;
    let message = declined["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not accepted"), "{declined}");

    // No user's token is kept in clear; after a restart each key is still itself.
    let issued = server.issued().await;
    let stored = registry_bytes(&gateway.config);
    for token in issued["issued"].as_array().unwrap() {
        let token = token.as_str().unwrap().as_bytes();
        assert!(
            !stored.windows(token.len()).any(|window| window == token),
            "a token is in the database in clear"
        );
    }
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");
    let gateway = ServeProcess::start_in(config, &admin_env());
    Api::logged_in(&gateway)
        .await
        .wait_for_state("remote", "ready")
        .await;
    let answer = call_modern(&gateway, &bob, json!({}), None).await;
    assert_eq!(identity(&answer), "bob");
    let answer = call_modern(&gateway, &alice, json!({}), None).await;
    assert_eq!(identity(&answer), "alice");

    // Revoking a key forgets its sign-ins; the others keep theirs.
    let api = Api::logged_in(&gateway).await;
    let keys = api.get("/api/v1/auth/keys").await;
    let id_of = |name: &str| {
        keys.body
            .as_array()
            .unwrap()
            .iter()
            .find(|key| key["name"] == name)
            .unwrap_or_else(|| panic!("no key {name}: {keys:?}"))["id"]
            .to_string()
    };
    let (alice_id, bob_id) = (id_of("alice-agent"), id_of("bob-agent"));
    let revoked = api
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/auth/keys/{}", bob_id.trim_matches('"')),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{revoked:?}");
    let signed_in = principals_signed_in(&gateway);
    assert!(
        signed_in.contains(&format!("key:{}", alice_id.trim_matches('"'))),
        "{signed_in:?}"
    );
    assert!(
        !signed_in.contains(&format!("key:{}", bob_id.trim_matches('"'))),
        "{signed_in:?}"
    );
    let answer = call_modern(&gateway, &alice, json!({}), None).await;
    assert_eq!(identity(&answer), "alice");
}

/// The principals the registry keeps upstream sign-ins for (the gateway's own is "").
fn principals_signed_in(gateway: &ServeProcess) -> Vec<String> {
    let database = gateway.config.dir.path().join("data/mcps.db");
    let db = rusqlite::Connection::open(database).unwrap();
    let mut query = db
        .prepare("SELECT principal FROM oauth_credentials")
        .unwrap();
    query
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A key's connection unused for `timeouts.session_idle_secs` is closed; its sign-in is kept,
/// and its next call opens the connection again.
#[tokio::test]
async fn an_idle_keys_connection_closes_and_opens_again_signed_in() {
    let server = OAuthServer::start(3600);
    let (gateway, api) = per_user_gateway(&server, "timeouts:\n  session_idle_secs: 1\n").await;
    let alice = api.create_key("alice-agent").await;
    let bob = api.create_key("bob-agent").await;
    let url_elicitations = json!({"elicitation": {"url": {}}});
    let asked = call_modern(&gateway, &alice, url_elicitations, None).await;
    let address = asked["result"]["inputRequests"][SIGN_IN_INPUT]["params"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no address: {asked}"))
        .to_owned();
    server.next_subject("alice").await;
    sign_in_at(&address).await;
    let answer = call_modern(&gateway, &alice, json!({}), None).await;
    assert_eq!(identity(&answer), "alice");

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    // Another key's request looks over the connections, and closes Alice's.
    let refused = call_modern(&gateway, &bob, json!({}), None).await;
    assert!(refused["error"].is_object(), "{refused}");
    assert!(
        gateway.log().contains("closing a user's idle connection"),
        "{}",
        gateway.log()
    );
    let answer = call_modern(&gateway, &alice, json!({}), None).await;
    assert_eq!(identity(&answer), "alice");
}

/// What a user of the identity provider does with a sign-in address in `browser`: the page
/// sends them to log in at the provider, which sends them back to the gateway (at the
/// address the last step returns). The gateway's answer.
async fn log_in_at_provider(browser: &Browser, address: &str) -> reqwest::Response {
    let back = provider_answer(browser, address).await;
    browser.get(&back).await
}

/// The address the identity provider sends `browser` back to, after the sign-in page sent it
/// there to log in.
async fn provider_answer(browser: &Browser, address: &str) -> String {
    let page = browser.get(address).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "{page:?}");
    let logged_in = browser.get(&location(&page)).await;
    let back = location(&logged_in);
    assert!(back.contains("/oauth/identity-callback?"), "{back}");
    back
}

/// The users of the identity provider (`auth.oauth` with the gateway's own `client_id` there)
/// sign in for themselves too: the address sends them to log in at the provider, and only
/// the user it was made for goes on; each then sees only their own identity.
#[tokio::test]
async fn users_of_the_identity_provider_sign_in_for_themselves_at_the_provider() {
    let issuer = Issuer::start();
    let server = OAuthServer::start(3600);
    let idp = format!(
        "  oauth:\n    issuer: {:?}\n    audience: {AUDIENCE:?}\n    scopes: [{SCOPE:?}]\n    \
         client_id: mcps-gateway\n    client_secret: not-a-real-secret\n",
        issuer.base()
    );
    let (gateway, _api) = per_user_gateway(&server, &idp).await;
    let carol = issuer.mint(json!({"sub": "carol"})).await;
    let dave = issuer.mint(json!({"sub": "dave"})).await;
    let url_elicitations = json!({"elicitation": {"url": {}}});
    let address_of = |asked: &Value| {
        asked["result"]["inputRequests"][SIGN_IN_INPUT]["params"]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no address: {asked}"))
            .to_owned()
    };
    let asked = call_modern(&gateway, &carol, url_elicitations.clone(), None).await;
    let address = address_of(&asked);

    // Someone else at the provider, or a user of the registry, signs nobody in with it.
    issuer.next_subject("mallory").await;
    let refused = log_in_at_provider(&Browser::new(), &address).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{refused:?}");
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("made for another user")
    );
    let refused = Browser::new()
        .post_form(&address, login_form(ADMIN_PASSWORD))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{refused:?}");
    // Carol's own answer from the provider, passed on to another browser, is refused.
    issuer.next_subject("carol").await;
    let answer = provider_answer(&Browser::new(), &address).await;
    let refused = Browser::new().get(&answer).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{refused:?}");
    assert!(refused.text().await.unwrap().contains("another browser"));
    let still = call_modern(&gateway, &carol, url_elicitations.clone(), None).await;
    assert_eq!(still["result"]["resultType"], "input_required", "{still}");

    // Carol logs in at the provider, and is sent on to sign in to the upstream.
    issuer.next_subject("carol").await;
    server.next_subject("carol").await;
    let browser = Browser::new();
    let onward = log_in_at_provider(&browser, &address).await;
    approve_at_authorization_server(&browser, onward).await;
    let accepted = Some(json!({"action": "accept"}));
    let answer = call_modern(&gateway, &carol, url_elicitations.clone(), accepted).await;
    assert_eq!(identity(&answer), "carol");

    // Dave has his own address, and never Carol's identity.
    let asked = call_modern(&gateway, &dave, url_elicitations.clone(), None).await;
    let dave_address = address_of(&asked);
    assert_ne!(dave_address, address);
    issuer.next_subject("dave").await;
    server.next_subject("dave").await;
    let browser = Browser::new();
    let onward = log_in_at_provider(&browser, &dave_address).await;
    approve_at_authorization_server(&browser, onward).await;
    let answer = call_modern(&gateway, &dave, json!({}), None).await;
    assert_eq!(identity(&answer), "dave");
    let answer = call_modern(&gateway, &carol, json!({}), None).await;
    assert_eq!(identity(&answer), "carol");

    // A login answer the gateway never asked for is refused.
    let forged = client()
        .get(format!(
            "{}/oauth/identity-callback?code=x&state=0123456789abcdef",
            gateway.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    // A login the provider refused signs nobody in, and says why.
    let refused = client()
        .get(format!(
            "{}/oauth/identity-callback?error=access_denied&state=0123456789abcdef",
            gateway.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("access_denied"));
}

/// Without the gateway's own client at the identity provider (`auth.oauth.client_id`), its
/// users cannot be told who they are at a sign-in page: their call says so, and what to ask.
#[tokio::test]
async fn users_of_the_identity_provider_are_told_when_the_gateway_cannot_sign_them_in() {
    let issuer = Issuer::start();
    let server = OAuthServer::start(3600);
    let idp = format!(
        "  oauth:\n    issuer: {:?}\n    audience: {AUDIENCE:?}\n    scopes: [{SCOPE:?}]\n",
        issuer.base()
    );
    let (gateway, _api) = per_user_gateway(&server, &idp).await;
    let carol = issuer.mint(json!({"sub": "carol"})).await;
    let refused = call_modern(&gateway, &carol, json!({"elicitation": {"url": {}}}), None).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("auth.oauth.client_id"), "{refused}");
}
