//! Signing the gateway in to an OAuth upstream from the console, as a browser without script
//! would (the button's answer carries both htmx's redirect and a link): the Python SDK's
//! authorization server (tests/fixtures/python/oauth_server.py) behind the upstream, the
//! sign-in bound to the browser that started it, the upstream ready after the callback, and
//! signed out again from the console.

use reqwest::StatusCode;

use crate::{
    common::{
        api::Api,
        browser::{Browser, location},
        console::PASSWORD,
        fixture_upstream_yaml,
        process::{ConfigDir, ServeProcess},
    },
    upstream_oauth::OAuthServer,
};

/// The link the page shows to the authorization server, unescaped.
fn sign_in_link(page: &str) -> String {
    let link = page
        .split("bound to this browser: <a href=\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no sign-in link in {page}"));
    link[..link.find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn an_administrator_signs_the_gateway_in_from_the_console_in_their_own_browser() {
    let server = OAuthServer::start(3600);
    let yaml = format!(
        "upstreams:\n  remote:\n    url: {:?}\n    oauth: {{}}\n{}",
        server.url(),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway =
        ServeProcess::start_in(ConfigDir::new(&yaml), &[("MCPS_ADMIN_PASSWORD", PASSWORD)]);
    let base = &gateway.base;
    let operator = Browser::new();
    let login = format!("username=admin&password={}", PASSWORD.replace(' ', "+"));
    let signed_in = operator.post_form(&format!("{base}/ui/login"), login).await;
    assert_eq!(location(&signed_in), "/ui");
    let token = Api::logged_in_with(&gateway, PASSWORD).await;
    token.wait_for_state("remote", "needs_authorization").await;

    let page = operator.get(&format!("{base}/ui/upstreams")).await;
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"action="/ui/upstreams/remote/authorize""#),
        "{page}"
    );
    assert!(!page.contains("/ui/upstreams/fx/authorize"), "{page}");

    let authorize = format!("{base}/ui/upstreams/remote/authorize");
    let started = operator.post_form(&authorize, String::new()).await;
    assert_eq!(started.status(), StatusCode::OK);
    let htmx_goes_to = started.headers()["hx-redirect"]
        .to_str()
        .unwrap()
        .to_owned();
    let set_cookie = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.starts_with("mcps_browser=") && set_cookie.contains("Path=/oauth"),
        "{set_cookie}"
    );
    let url = sign_in_link(&started.text().await.unwrap());
    assert_eq!(url, htmx_goes_to);

    // Passed on to someone else's browser, the URL signs nobody in, and is spent.
    let stranger = Browser::new();
    let callback = location(&stranger.get(&url).await);
    let refused = stranger.get(&callback).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("another browser"));

    // Started again, it finishes in the operator's own browser and leads back to the console.
    let started = operator.post_form(&authorize, String::new()).await;
    let url = sign_in_link(&started.text().await.unwrap());
    let callback = location(&operator.get(&url).await);
    let done = operator.get(&callback).await;
    assert_eq!(done.status(), StatusCode::OK);
    let done = done.text().await.unwrap();
    assert!(
        done.contains("signed in to remote") && done.contains(r#"href="/ui/upstreams""#),
        "{done}"
    );
    token.wait_for_state("remote", "ready").await;

    let signed_out = operator
        .post_form(
            &format!("{base}/ui/upstreams/remote/sign-out"),
            String::new(),
        )
        .await;
    assert_eq!(location(&signed_out), "/ui/upstreams?done=remote");
    token.wait_for_state("remote", "needs_authorization").await;

    // An upstream without OAuth has nothing to sign in to.
    let none = operator
        .post_form(&format!("{base}/ui/upstreams/fx/authorize"), String::new())
        .await;
    let none = none.text().await.unwrap();
    assert!(
        none.contains("fx: service &#34;fx&#34; does not use OAuth"),
        "{none}"
    );
}
