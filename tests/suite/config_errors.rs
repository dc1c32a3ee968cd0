//! A bad `proxy.yaml` fails `mcps check` with a message naming the key at fault.

use crate::common;

use common::process::{ConfigDir, run_mcps};

fn check_fails_naming(yaml: &str, key: &str) {
    let config = ConfigDir::new(yaml);
    let (status, stdout, stderr) = run_mcps(&config.path(), &["check"]);
    assert_eq!(status.code(), Some(2), "stdout: {stdout} stderr: {stderr}");
    assert!(stderr.contains(key), "expected {key:?} in: {stderr}");
}

#[test]
fn unknown_key_is_named() {
    check_fails_naming(
        "upstreams:\n  time:\n    command: x\n    argz: []\n",
        "upstreams.time",
    );
    check_fails_naming(
        "upstreams:\n  time:\n    command: x\n    argz: []\n",
        "argz",
    );
    check_fails_naming("servre:\n  listen: x\n", "servre");
}

#[test]
fn bad_upstream_name_is_named() {
    check_fails_naming(
        "upstreams:\n  Bad_Name:\n    command: x\n",
        "upstreams.Bad_Name",
    );
}

#[test]
fn duplicate_upstream_name_is_named() {
    check_fails_naming(
        "upstreams:\n  time:\n    command: a\n  time:\n    command: b\n",
        "time",
    );
}

#[test]
fn missing_variable_is_named() {
    check_fails_naming(
        "upstreams:\n  r:\n    url: http://127.0.0.1:1/mcp\n    headers: {Authorization: \"Bearer ${MCPS_TEST_UNSET_TOKEN}\"}\n",
        "upstreams.r.headers.Authorization",
    );
}

#[test]
fn unreadable_file_is_named() {
    let (status, _, stderr) = run_mcps(std::path::Path::new("/nonexistent/proxy.yaml"), &["check"]);
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("/nonexistent/proxy.yaml"), "{stderr}");
}

#[test]
fn shipped_configs_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for shipped in ["proxy.yaml", "docker/proxy.yaml"] {
        mcps::config::Config::load(&root.join(shipped))
            .unwrap_or_else(|error| panic!("{shipped}: {error}"));
    }
}

#[test]
fn limits_out_of_range_are_named() {
    check_fails_naming("limits:\n  max_json_depth: 500\n", "limits.max_json_depth");
    check_fails_naming(
        "limits:\n  max_outbound_bytes: 0\n",
        "limits.max_outbound_bytes",
    );
    check_fails_naming(
        "timeouts:\n  session_idle_secs: -1\n",
        "timeouts.session_idle_secs",
    );
    check_fails_naming(
        "upstreams:\n  fx:\n    command: x\n    tool_timeouts: {slow: 0}\n",
        "upstreams.fx.tool_timeouts.slow",
    );
}

#[test]
fn a_bad_identity_provider_block_is_named() {
    let idp =
        "auth:\n  oauth:\n    issuer: https://idp.example\n    audience: https://mcp.example/mcp\n";
    check_fails_naming(
        &format!("{idp}    client_secret: s3cret\n"),
        "auth.oauth.client_secret",
    );
    check_fails_naming(
        "auth:\n  oauth:\n    issuer: idp\n    audience: https://mcp.example/mcp\n",
        "auth.oauth.issuer",
    );
}
