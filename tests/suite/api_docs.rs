//! The OpenAPI document at `/openapi.json` is valid OpenAPI 3.1, schemathesis finds no
//! server error in any operation it describes, and the viewers (`/docs`, `/redoc`) are
//! served from the binary with everything they load.

use crate::common;

use std::process::Command;

use common::{
    api::{Api, admin_env},
    clients_dir, fixture_upstream_yaml,
    process::{ConfigDir, ServeProcess},
    python,
};
use reqwest::StatusCode;

#[tokio::test]
async fn the_document_validates_and_fuzzing_finds_no_server_error() {
    let yaml = format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    // An API key, not the login token: the fuzzer calls /auth/logout too.
    let key = api.create_key("schemathesis").await;
    let base = gateway.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(clients_dir().join("check_openapi.py"))
            .args([&base, &key])
            .output()
            .expect("run check_openapi.py")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("valid OpenAPI 3.1"), "{stdout}");
    assert!(!gateway.log().contains("panicked"), "{}", gateway.log());
}

#[tokio::test]
async fn the_viewers_are_served_from_the_binary() {
    let gateway = ServeProcess::start_in(ConfigDir::new(""), &admin_env());
    let client = common::http::client();
    let get = |path: &str| {
        let url = format!("{}{path}", gateway.base);
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, page) = get("/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("swagger-ui"), "{page}");
    for asset in [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        let (status, body) = get(asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(!body.is_empty(), "{asset}");
    }
    let (_, initializer) = get("/docs/swagger-initializer.js").await;
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "no online validator: {initializer}"
    );

    let (status, page) = get("/redoc").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("/redoc/redoc.standalone.js") && page.contains("/openapi.json"));
    assert!(
        !page.contains("https://"),
        "ReDoc loads nothing from the network: {page}"
    );
    let (status, script) = get("/redoc/redoc.standalone.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(script.len() > 500_000, "the whole bundle");

    let (status, document) = get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/mcp/services/{name}",
        "/api/v1/mcp/proxy",
        "/api/v1/calls",
        "/api/v1/system/upload",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
}
