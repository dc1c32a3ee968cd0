//! Two upstreams with the same tool name both stay reachable; names clients would reject are
//! exposed in a safe form and still route to the right tool.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

const LONG_NAME: &str =
    "a_tool_name_that_goes_on_and_on_well_past_the_sixty_four_characters_clients_accept";

fn config() -> String {
    format!(
        "upstreams:\n{}{}",
        fixture_upstream_yaml(
            "alpha",
            "alpha",
            &["echo", "weird name.v2/x", LONG_NAME],
            ""
        ),
        fixture_upstream_yaml("beta", "beta", &["echo"], ""),
    )
}

#[tokio::test]
async fn same_tool_name_on_two_upstreams_stays_reachable_under_distinct_names() {
    let gateway = ServeProcess::start(&config());
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let names = session.tool_names().await;
    assert!(names.contains(&"alpha__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"beta__echo".to_owned()), "{names:?}");

    for label in ["alpha", "beta"] {
        let reply = session
            .call(&format!("{label}__echo"), json!({"x": 1}))
            .await;
        let structured = &reply["result"]["structuredContent"];
        assert_eq!(structured["label"], label, "{reply}");
        assert_eq!(structured["tool"], "echo", "{reply}");
        assert_eq!(structured["arguments"], json!({"x": 1}), "{reply}");
    }
}

#[tokio::test]
async fn unsafe_and_long_names_are_exposed_safely_and_still_route() {
    let gateway = ServeProcess::start(&config());
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let names = session.tool_names().await;
    for name in &names {
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "unsafe exposed name {name:?}"
        );
    }
    assert!(
        names.contains(&"alpha__weird_name_v2_x".to_owned()),
        "{names:?}"
    );
    let long = names
        .iter()
        .find(|name| name.starts_with("alpha__a_tool_name_that_goes_on"))
        .expect("the long name is listed");
    assert_eq!(long.len(), 64);

    let reply = session.call("alpha__weird_name_v2_x", json!({})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["tool"], "weird name.v2/x",
        "{reply}"
    );
    let reply = session.call(long, json!({})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["tool"], LONG_NAME,
        "{reply}"
    );
}

#[tokio::test]
async fn colliding_names_keep_the_first_upstream_and_are_reported() {
    let yaml = format!(
        "upstreams:\n{}{}",
        fixture_upstream_yaml("first", "first", &["echo"], "    prefix: \"\"\n"),
        fixture_upstream_yaml("second", "second", &["echo", "other"], "    prefix: \"\"\n"),
    );
    let gateway = ServeProcess::start(&yaml);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let names = session.tool_names().await;
    assert_eq!(names, ["echo", "other"]);
    let reply = session.call("echo", json!({})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "first",
        "{reply}"
    );
    let log = gateway.log();
    assert!(
        log.contains("\"echo\"") && log.contains("second"),
        "collision not logged: {log}"
    );

    let (status, stdout, _) = common::process::run_mcps(&gateway.config.path(), &["check"]);
    assert!(
        !status.success(),
        "check must fail on a collision: {stdout}"
    );
    assert!(stdout.contains("COLLISION"), "{stdout}");
}

#[tokio::test]
async fn tools_list_pages_cover_every_tool_exactly_once() {
    let many: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let yaml = format!(
        "catalog:\n  page_size: 7\nupstreams:\n{}",
        fixture_upstream_yaml("pages", "pages", &many, "")
    );
    let gateway = ServeProcess::start(&yaml);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let names = session.tool_names().await;
    let expected: Vec<String> = many.iter().map(|t| format!("pages__{t}")).collect();
    assert_eq!(names, expected);

    let reply = session
        .request("tools/list", json!({"cursor": "not a cursor!"}))
        .await;
    assert_eq!(reply.error_code(), Some(-32602), "{}", reply.body);
}
