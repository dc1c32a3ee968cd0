//! The web console over plain HTTP: where a browser is sent, what signing in and out does to
//! the cookie and the token, the refusals (a wrong password, a form of another site, a
//! fragment asked for while signed out), the pages' policy, and the Chinese pages. The
//! browser's own test is console_browser.rs; the upstream forms', console_upstreams.rs.

use crate::common;

use common::{
    console::{Console, FormOf, PASSWORD, browser, gateway, location, signed_in},
    fixture_upstream_yaml,
    http::client,
    process::{ConfigDir, ServeProcess},
};
use reqwest::{StatusCode, header};

#[tokio::test]
async fn a_browser_is_led_to_sign_in_and_then_sees_the_upstreams() {
    let gateway = gateway();
    let base = &gateway.base;
    let root = browser().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&root), "/ui");
    let signed_out = browser().get(format!("{base}/ui")).send().await.unwrap();
    assert_eq!(location(&signed_out), "/ui/login");

    let form = browser()
        .get(format!("{base}/ui/login"))
        .send()
        .await
        .unwrap();
    let policy = form.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'self'"));
    let form = form.text().await.unwrap();
    assert!(form.contains(r#"name="username""#) && form.contains(r#"name="password""#));
    // Nothing is loaded from anywhere else.
    for attribute in ["src=\"", "href=\""] {
        for value in form.split(attribute).skip(1) {
            assert!(
                value.starts_with('/') || value.starts_with('#'),
                "{value:.60}"
            );
        }
    }

    let cookie = signed_in(&gateway).await;
    let overview = browser()
        .get(format!("{base}/ui"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), StatusCode::OK);
    let overview = overview.text().await.unwrap();
    assert!(
        overview.contains(r#"data-upstream="fx" data-state="ready""#),
        "{overview}"
    );
    assert!(overview.contains("Signed in as <strong>admin</strong>"));

    let live = browser()
        .get(format!("{base}/ui/overview/live"))
        .header(header::COOKIE, &cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(live.starts_with("<div id=\"live\""), "{live:.80}");
    assert!(!live.contains("<html"), "a fragment, not a page");
}

#[tokio::test]
async fn refusals_are_said_and_signing_out_ends_the_token() {
    let gateway = gateway();
    let base = &gateway.base;
    let wrong = browser()
        .post(format!("{base}/ui/login"))
        .form_of(&[("username", "admin"), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    let wrong = wrong.text().await.unwrap();
    assert!(
        wrong.contains(r#"role="alert">wrong username or password"#),
        "{wrong}"
    );
    assert!(
        wrong.contains(r#"value="admin""#),
        "the name is kept: {wrong}"
    );

    // A form of another site cannot sign in, nor sign out.
    let forged = browser()
        .post(format!("{base}/ui/login"))
        .header(header::ORIGIN, "http://elsewhere.example")
        .form_of(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let cookie = signed_in(&gateway).await;
    let forged = browser()
        .post(format!("{base}/ui/logout"))
        .header(header::COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let out = browser()
        .post(format!("{base}/ui/logout"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&out), "/ui/login");
    assert!(
        out.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // The token itself is revoked: a copy of the cookie no longer signs in.
    let after = browser()
        .get(format!("{base}/ui"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&after), "/ui/login");
    let fragment = browser()
        .get(format!("{base}/ui/overview/live"))
        .header(header::COOKIE, &cookie)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(fragment.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(fragment.headers()["hx-redirect"], "/ui/login");
}

#[tokio::test]
async fn the_console_speaks_chinese_when_asked() {
    let gateway = gateway();
    let base = &gateway.base;
    let by_browser = client()
        .get(format!("{base}/ui/login"))
        .header(header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        by_browser.contains(r#"<html lang="zh-CN">"#),
        "{by_browser:.200}"
    );
    assert!(by_browser.contains("用户名") && by_browser.contains("密码"));

    let chosen = browser()
        .get(format!("{base}/ui/lang/en?back=/ui/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&chosen), "/ui/login");
    let kept = chosen.headers()[header::SET_COOKIE].to_str().unwrap();
    let english = client()
        .get(format!("{base}/ui/login"))
        .header(header::ACCEPT_LANGUAGE, "zh-CN")
        .header(header::COOKIE, kept.split(';').next().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains(r#"<html lang="en">"#), "the choice wins");
    // Only a console page is gone back to.
    let away = browser()
        .get(format!("{base}/ui/lang/zh?back=//elsewhere.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&away), "/ui");
    let split = browser()
        .get(format!("{base}/ui/lang/zh?back=/ui%0d%0aSet-Cookie:%20x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&split), "/ui", "no header is split");
}

#[tokio::test]
async fn a_tool_is_found_and_called_from_its_form_and_the_call_is_in_the_history() {
    let gateway = gateway();
    let console = Console::of(&gateway).await;
    let (status, list) = console.get("/ui/tools?q=ECHO").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(r#"data-tool="fx__echo""#), "{list}");
    let (_, none) = console.get("/ui/tools?q=nothing-like-it").await;
    assert!(!none.contains("data-tool="), "{none}");
    let (status, _) = console.get("/ui/tools/fx__nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, unknown_server) = console.get("/ui/tools?server=nowhere").await;
    assert!(
        unknown_server.contains("no virtual server"),
        "{unknown_server}"
    );

    let (_, tool) = console.get("/ui/tools/fx__echo").await;
    assert!(tool.contains(r#"action="/ui/tools/fx__echo""#), "{tool}");
    let called = console.post("/ui/tools/fx__echo", &[]).await;
    let called = called.text().await.unwrap();
    assert!(called.contains(r#"data-failed="false""#), "{called}");
    assert!(called.contains("fx:echo:"), "the tool's answer: {called}");

    // The history: the call, filtered by tool, user and outcome, and its record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let list = loop {
        let (_, list) = console.get("/ui/calls?tool=fx__echo&user=admin").await;
        if list.contains("data-call=") || std::time::Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        list.contains(r#"data-tool="fx__echo" data-outcome="ok""#),
        "{list}"
    );
    let (_, other_user) = console.get("/ui/calls?user=someone-else").await;
    assert!(!other_user.contains("data-call="), "{other_user}");
    let (_, failed) = console.get("/ui/calls?outcome=error").await;
    assert!(!failed.contains("data-call="), "{failed}");
    let id = list.split(r#"data-call=""#).nth(1).unwrap();
    let id = &id[..id.find('"').unwrap()];
    let (status, record) = console.get(&format!("/ui/calls/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        record.contains("fx__echo") && record.contains("console"),
        "{record}"
    );
    let (status, _) = console.get("/ui/calls/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The overview's last minute counts the call, with its time's percentiles.
    let (_, live) = console.get("/ui/overview/live").await;
    let latency = live
        .split("Time p50 · p95 · p99 (last minute)</dt><dd>")
        .nth(1)
        .unwrap_or_else(|| panic!("{live}"));
    let latency = &latency[..latency.find('<').unwrap()];
    assert_eq!(latency.matches(" ms").count(), 3, "{latency}");
}

#[tokio::test]
async fn a_key_made_in_the_console_works_until_it_is_revoked_there() {
    let gateway = gateway();
    let console = Console::of(&gateway).await;
    let refused = console
        .refused(
            "/ui/keys",
            &[("name", "bound"), ("virtual_server", "nowhere")],
        )
        .await;
    assert!(refused.contains("nowhere"), "{refused}");
    let refused = console.refused("/ui/keys", &[("name", "  ")]).await;
    assert!(refused.contains("name"), "{refused}");

    let made = console.post("/ui/keys", &[("name", "laptop")]).await;
    let made = made.text().await.unwrap();
    let key = made
        .split(r#"<code id="new-key">"#)
        .nth(1)
        .expect("the key, once");
    let key = &key[..key.find('<').unwrap()];
    let me = |key: String| {
        let url = format!("{}/api/v1/auth/me", gateway.base);
        async move {
            client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(key.to_owned()).await, StatusCode::OK);
    let (_, list) = console.get("/ui/keys").await;
    assert!(!list.contains(key), "the key is shown only when made");
    let id = list.split(r#"action="/ui/keys/"#).nth(1).unwrap();
    let id = &id[..id.find('/').unwrap()];
    let revoked = console.post(&format!("/ui/keys/{id}/revoke"), &[]).await;
    assert_eq!(location(&revoked), "/ui/keys");
    assert_eq!(me(key.to_owned()).await, StatusCode::UNAUTHORIZED);
    let unknown = console.refused("/ui/keys/999999/revoke", &[]).await;
    assert!(unknown.to_lowercase().contains("no "), "{unknown}");
}

#[tokio::test]
async fn the_logs_page_shows_the_last_lines_filtered() {
    let gateway = gateway();
    let console = Console::of(&gateway).await;
    let (status, page) = console.get("/ui/logs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("logged in user=admin"), "{page}");
    let (_, filtered) = console.get("/ui/logs?q=nothing%20says%20this").await;
    assert!(!filtered.contains("logged in"), "{filtered}");
    let (status, live) = console.get("/ui/logs/live?q=logged").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        live.starts_with("<pre id=\"log\"") && live.contains("logged in"),
        "{live}"
    );
}

#[tokio::test]
async fn the_config_page_hides_every_secret_and_a_reload_shows_what_changed() {
    let fx = fixture_upstream_yaml(
        "fx",
        "fx",
        &["echo"],
        "    env: { FX_TOKEN: fx-secret-value }\n",
    );
    let remote = "  remote:\n    url: http://bot:url-secret@example.invalid/mcp\n    headers: { Authorization: Bearer header-secret }\n    disabled: true\n";
    let yaml = format!("upstreams:\n{fx}{remote}");
    let gateway =
        ServeProcess::start_in(ConfigDir::new(&yaml), &[("MCPS_ADMIN_PASSWORD", PASSWORD)]);
    let console = Console::of(&gateway).await;
    let (status, page) = console.get("/ui/config").await;
    assert_eq!(status, StatusCode::OK);
    for secret in ["fx-secret-value", "url-secret", "header-secret"] {
        assert!(!page.contains(secret), "{secret} shown: {page}");
    }
    assert!(
        page.contains("FX_TOKEN: &#39;********&#39;") && page.contains("bot:********@"),
        "{page}"
    );
    // Defaults are filled in: the page shows what runs, not only what the file says.
    assert!(page.contains("max_sessions:"), "{page}");

    let unchanged = console.post("/ui/config/reload", &[]).await;
    assert_eq!(unchanged.status(), StatusCode::OK);
    let unchanged = unchanged.text().await.unwrap();
    assert!(unchanged.contains("nothing changed"), "{unchanged}");

    let file = gateway.config.path();
    let second = fixture_upstream_yaml("fx2", "fx2", &["echo"], "");
    std::fs::write(&file, format!("{yaml}{second}logging:\n  level: debug\n")).unwrap();
    let reloaded = console
        .post("/ui/config/reload", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        reloaded.contains("<dt>Started</dt><dd>fx2</dd>"),
        "{reloaded}"
    );
    assert!(
        reloaded.contains("<dt>Log level</dt><dd>debug</dd>"),
        "{reloaded}"
    );
    assert!(
        reloaded.contains(r#"<span class="new">+   fx2:</span>"#),
        "{reloaded}"
    );
    assert!(
        reloaded.contains(r#"<span class="gone">-   level: info"#),
        "{reloaded}"
    );
    assert!(!reloaded.contains("fx-secret-value"), "{reloaded}");

    std::fs::write(&file, "upstreams: [not, a, map]\n").unwrap();
    let refused = console.refused("/ui/config/reload", &[]).await;
    assert!(
        refused.contains("running configuration stays") && refused.contains("upstreams"),
        "{refused}"
    );
    let (_, page) = console.get("/ui/config").await;
    assert!(
        page.contains("fx2:"),
        "the running configuration stays: {page}"
    );
}
