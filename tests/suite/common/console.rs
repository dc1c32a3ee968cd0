//! A browser's side of the web console over plain HTTP, for the tests that drive it without
//! a browser: signing in, GETs and form posts with the console's cookie, and no redirect
//! followed, so each answer can be seen.

use reqwest::{StatusCode, header};

use super::{
    fixture_upstream_yaml,
    process::{ConfigDir, ServeProcess},
};

/// The first user's password in the console's tests.
pub const PASSWORD: &str = "console password";

/// A gateway with one fixture upstream (`fx`, tool `echo`) and the console's first user.
pub fn gateway() -> ServeProcess {
    ServeProcess::start_in(
        ConfigDir::new(&format!(
            "upstreams:\n{}",
            fixture_upstream_yaml("fx", "fx", &["echo"], "")
        )),
        &[("MCPS_ADMIN_PASSWORD", PASSWORD)],
    )
}

/// A client that follows no redirect, so each answer can be seen.
pub fn browser() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A form post's body, as a browser sends it.
pub trait FormOf {
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

pub fn location(response: &reqwest::Response) -> &str {
    response.headers()[header::LOCATION].to_str().unwrap()
}

/// Signs in; the `Cookie` header value that carries the console's token.
pub async fn signed_in(gateway: &ServeProcess) -> String {
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

/// A signed-in console client: GETs and form POSTs with the console's cookie.
pub struct Console {
    pub base: String,
    pub cookie: String,
}

impl Console {
    pub async fn of(gateway: &ServeProcess) -> Self {
        Self {
            base: gateway.base.clone(),
            cookie: signed_in(gateway).await,
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = browser()
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        browser()
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .form_of(fields)
            .send()
            .await
            .unwrap()
    }

    /// A POST whose answer is a page again (a refusal): its alert's text.
    pub async fn refused(&self, path: &str, fields: &[(&str, &str)]) -> String {
        let response = self.post(path, fields).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page = response.text().await.unwrap();
        let alert = page
            .split(r#"role="alert">"#)
            .nth(1)
            .unwrap_or_else(|| panic!("no alert in {page}"));
        alert[..alert.find('<').unwrap()].to_owned()
    }
}
