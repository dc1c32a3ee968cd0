//! A client of the REST surface, over real HTTP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{http::client, process::ServeProcess};

/// The password the tests give the first user (through `MCPS_ADMIN_PASSWORD`).
pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// The environment that makes the first user's password [`ADMIN_PASSWORD`].
pub fn admin_env() -> [(&'static str, &'static str); 1] {
    [("MCPS_ADMIN_PASSWORD", ADMIN_PASSWORD)]
}

/// An answer: its status and its JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// The REST API of one gateway, with or without a token.
pub struct Api {
    pub base: String,
    pub token: Option<String>,
}

impl Api {
    pub fn new(gateway: &ServeProcess) -> Self {
        Self {
            base: gateway.base.clone(),
            token: None,
        }
    }

    /// Logs in as admin and keeps the token.
    pub async fn logged_in(gateway: &ServeProcess) -> Self {
        Self::logged_in_with(gateway, ADMIN_PASSWORD).await
    }

    /// Logs in as admin with `password` and keeps the token.
    pub async fn logged_in_with(gateway: &ServeProcess, password: &str) -> Self {
        let mut api = Self::new(gateway);
        let answer = api
            .send(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"username": "admin", "password": password})),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "login: {answer:?}");
        api.token = Some(answer.body["token"].as_str().expect("a token").to_owned());
        api
    }

    /// The same API with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Self {
            base: self.base.clone(),
            token: token.map(str::to_owned),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = client().request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API request");
        Self::answer(response).await
    }

    /// Sends `body` as is, with `content_type`.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> Answer {
        let mut request = client()
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        Self::answer(request.send().await.expect("API request")).await
    }

    pub async fn answer(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(body)).await
    }

    /// Creates an API key called `name` and returns the key.
    pub async fn create_key(&self, name: &str) -> String {
        let answer = self.post("/api/v1/auth/keys", json!({"name": name})).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        answer.body["key"].as_str().expect("a key").to_owned()
    }

    /// Revokes the caller's API key called `name`.
    pub async fn revoke_key(&self, name: &str) {
        let keys = self.get("/api/v1/auth/keys").await;
        let id = keys
            .body
            .as_array()
            .and_then(|keys| keys.iter().find(|key| key["name"] == name))
            .map(|key| key["id"].clone())
            .unwrap_or_else(|| panic!("no key {name:?}: {keys:?}"));
        let revoked = self
            .send(Method::DELETE, &format!("/api/v1/auth/keys/{id}"), None)
            .await;
        assert!(revoked.status.is_success(), "{revoked:?}");
    }

    /// Registers the service `remote`, disabled (it points nowhere), through the API.
    pub async fn add_disabled_service(&self) {
        let service = self
            .post(
                "/api/v1/mcp/services",
                json!({"name": "remote", "url": "http://127.0.0.1:9/mcp", "disabled": true}),
            )
            .await;
        assert_eq!(service.status, StatusCode::CREATED, "{service:?}");
    }

    /// Polls `GET /api/v1/mcp/services/{name}` until its state is `state`.
    pub async fn wait_for_state(&self, name: &str, state: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = self.get(&format!("/api/v1/mcp/services/{name}")).await;
            if answer.body["state"] == state {
                return answer.body;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "service {name} never became {state}: {answer:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
