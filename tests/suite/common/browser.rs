//! A user's browser, for the sign-in pages: it shows each redirect instead of following it,
//! and keeps the cookies it is given and sends them back (one jar for every site: enough for
//! tests whose sites are all on 127.0.0.1).

use std::sync::Mutex;

use reqwest::{Response, header};

pub struct Browser {
    client: reqwest::Client,
    /// `name=value` of each cookie it was given.
    cookies: Mutex<Vec<String>>,
}

impl Browser {
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Mutex::default(),
        }
    }

    pub async fn get(&self, url: &str) -> Response {
        let request = self.with_cookies(self.client.get(url));
        self.remember(request.send().await.expect("the browser's GET"))
    }

    /// POSTs an HTML form's fields, already encoded.
    pub async fn post_form(&self, url: &str, body: String) -> Response {
        let request = self
            .client
            .post(url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        let request = self.with_cookies(request);
        self.remember(request.send().await.expect("the browser's POST"))
    }

    fn with_cookies(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let cookies = self.cookies.lock().unwrap();
        if cookies.is_empty() {
            return request;
        }
        request.header(header::COOKIE, cookies.join("; "))
    }

    fn remember(&self, response: Response) -> Response {
        let mut cookies = self.cookies.lock().unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().trim();
            let name = pair.split('=').next().unwrap();
            cookies.retain(|kept| kept.split('=').next() != Some(name));
            cookies.push(pair.to_owned());
        }
        response
    }
}

/// Where a redirect sends the browser.
pub fn location(response: &Response) -> String {
    assert!(response.status().is_redirection(), "{response:?}");
    response.headers()["location"].to_str().unwrap().to_owned()
}
