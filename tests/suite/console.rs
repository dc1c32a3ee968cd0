//! The web console over plain HTTP: where a browser is sent, what signing in and out does to
//! the cookie and the token, the refusals (a wrong password, a form of another site, a
//! fragment asked for while signed out), the pages' policy, and the Chinese pages. The
//! browser's own test is console_browser.rs.

use crate::common;

use common::{
    fixture_upstream_yaml,
    http::client,
    process::{ConfigDir, ServeProcess},
};
use reqwest::{StatusCode, header};

const PASSWORD: &str = "console password";

fn gateway() -> ServeProcess {
    ServeProcess::start_in(
        ConfigDir::new(&format!(
            "upstreams:\n{}",
            fixture_upstream_yaml("fx", "fx", &["echo"], "")
        )),
        &[("MCPS_ADMIN_PASSWORD", PASSWORD)],
    )
}

/// A client that follows no redirect, so each answer can be seen.
fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A form post's body, as a browser sends it.
trait FormOf {
    fn form_of(self, fields: &[(&str, &str)]) -> Self;
}

impl FormOf for reqwest::RequestBuilder {
    fn form_of(self, fields: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    }
}

fn location(response: &reqwest::Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

/// Signs in; the `Cookie` header value that carries the console's token.
async fn signed_in(gateway: &ServeProcess) -> String {
    let response = browser()
        .post(format!("{}/ui/login", gateway.base))
        .form_of(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/ui");
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(attribute), "{set}");
    }
    set.split(';').next().unwrap().to_owned()
}

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
}
