//! The console's upstream forms over plain HTTP: each bad form refused with its reason, and
//! an upstream added there edited and removed there while proxy.yaml's are not. The rest of
//! the console is console.rs.

use crate::common;

use common::console::{Console, gateway, location};
use reqwest::StatusCode;

#[tokio::test]
async fn every_bad_upstream_form_is_refused_with_its_reason() {
    let gateway = gateway();
    let console = Console::of(&gateway).await;
    let add = |fields: Vec<(&'static str, &'static str)>| fields;
    for (fields, reason) in [
        (
            add(vec![
                ("name", "bad name!"),
                ("url", "http://example.com/mcp"),
            ]),
            "name",
        ),
        (
            add(vec![("name", "no-way"), ("command", "bash")]),
            "spawn_allowlist",
        ),
        (
            add(vec![
                ("name", "env"),
                ("url", "http://example.com/mcp"),
                ("headers", "no colon"),
            ]),
            "headers",
        ),
        (add(vec![("name", "neither")]), "command"),
        (
            add(vec![
                ("name", "more"),
                ("url", "http://8.8.8.8/mcp"),
                ("more", "bogus: 1"),
            ]),
            "unknown field `bogus`",
        ),
        (
            add(vec![("name", "inside"), ("url", "http://127.0.0.1:9/mcp")]),
            "private",
        ),
        (
            add(vec![("name", "fx"), ("url", "http://8.8.8.8/mcp")]),
            "exists",
        ),
    ] {
        let said = console.refused("/ui/upstreams", &fields).await;
        assert!(said.to_lowercase().contains(reason), "{fields:?}: {said}");
    }
    // proxy.yaml's upstreams are read-only here, but restart.
    let said = console.refused("/ui/upstreams/fx/delete", &[]).await;
    assert!(said.contains("proxy.yaml"), "{said}");
    let restarted = console.post("/ui/upstreams/fx/restart", &[]).await;
    assert_eq!(location(&restarted), "/ui/upstreams?done=fx");
    let unknown = console.post("/ui/upstreams/fx/explode", &[]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let missing = console.refused("/ui/upstreams/nobody/restart", &[]).await;
    assert!(missing.contains("nobody"), "{missing}");
}

#[tokio::test]
async fn an_upstream_added_here_is_edited_here_and_proxy_yaml_ones_are_not() {
    let gateway = gateway();
    let console = Console::of(&gateway).await;
    let added = console
        .post(
            "/ui/upstreams",
            &[
                ("name", "remote"),
                ("url", "http://8.8.8.8/mcp"),
                ("headers", "Authorization: Bearer edit-secret\nX-Old: 1"),
                ("more", "call_timeout_secs: 30"),
                ("disabled", "on"),
            ],
        )
        .await;
    assert_eq!(location(&added), "/ui/upstreams?done=remote");
    let (_, list) = console.get("/ui/upstreams").await;
    assert!(
        list.contains(r#"href="/ui/upstreams/remote/edit#entry""#),
        "{list}"
    );
    assert!(!list.contains("/ui/upstreams/fx/edit"), "{list}");

    let (status, form) = console.get("/ui/upstreams/remote/edit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!form.contains("edit-secret"), "{form}");
    assert!(
        form.contains(r#"action="/ui/upstreams/remote/edit""#)
            && form.contains("Authorization: ********\nX-Old: ********")
            && form.contains(r#"value="remote" readonly"#)
            && form.contains("call_timeout_secs: 30.0"),
        "{form}"
    );

    let saved = console
        .post(
            "/ui/upstreams/remote/edit",
            &[
                ("name", "remote"),
                ("url", "http://8.8.4.4/mcp"),
                ("headers", "Authorization: ********\nX-New: 2"),
                ("prefix", "far_"),
                ("more", "isolation: per-session"),
                ("disabled", "on"),
            ],
        )
        .await;
    assert_eq!(location(&saved), "/ui/upstreams?done=remote");
    // The console's cookie holds a login token, which the API takes too.
    let token = console.cookie.split_once('=').unwrap().1;
    let api = common::api::Api::new(&gateway).with_token(Some(token));
    let service = api.get("/api/v1/mcp/services/remote").await.body;
    assert_eq!(service["url"], "http://8.8.4.4/mcp");
    assert_eq!(service["prefix"], "far_");
    assert_eq!(service["isolation"], "per-session");
    assert!(service.get("call_timeout_secs").is_none(), "{service}");
    assert_eq!(
        service["headers"],
        serde_json::json!({"Authorization": "********", "X-New": "********"})
    );

    // Refusals keep what was typed, on the edit form.
    let fields = [
        ("name", "remote"),
        ("url", "http://127.0.0.1:9/mcp"),
        ("disabled", "on"),
    ];
    let said = console.refused("/ui/upstreams/remote/edit", &fields).await;
    assert!(
        said.contains("remote") && said.contains("private"),
        "{said}"
    );
    let page = console
        .post("/ui/upstreams/remote/edit", &fields)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"value="http://127.0.0.1:9/mcp""#), "{page}");
    let renamed = console
        .refused(
            "/ui/upstreams/remote/edit",
            &[("name", "other"), ("url", "http://8.8.4.4/mcp")],
        )
        .await;
    assert!(renamed.contains("renamed"), "{renamed}");
    let config = console.refused("/ui/upstreams/fx/edit", &fields).await;
    assert!(config.contains("proxy.yaml"), "{config}");
    let (_, form) = console.get("/ui/upstreams/fx/edit").await;
    assert!(form.contains("role=\"alert\">fx: "), "{form}");
    let missing = console.refused("/ui/upstreams/nobody/edit", &fields).await;
    assert!(missing.contains("nobody"), "{missing}");
}
