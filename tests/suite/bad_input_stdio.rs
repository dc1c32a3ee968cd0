//! Bad input over `mcps stdio` gets the right JSON-RPC error, and the session keeps working.

use crate::common;

use common::{
    fixture_upstream_yaml,
    line_peer::LinePeer,
    process::{ConfigDir, spawn_stdio},
};
use serde_json::{Value, json};

struct StdioGateway {
    peer: LinePeer,
    _config: ConfigDir,
}

impl StdioGateway {
    fn start() -> Self {
        let config = ConfigDir::new(&format!(
            "limits:\n  max_line_bytes: 4096\nupstreams:\n{}",
            fixture_upstream_yaml("fx", "fx", &["echo"], "")
        ));
        let mut gateway = Self {
            peer: LinePeer::from_child(spawn_stdio(&config)),
            _config: config,
        };
        let init = gateway.exchange(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "0"}}})
            .to_string(),
        );
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        gateway
            .peer
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        gateway
    }

    fn exchange(&mut self, line: &str) -> Value {
        self.peer.exchange(line)
    }

    fn assert_still_works(&mut self) {
        let reply = self.exchange(
            &json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                "params": {"name": "fx__echo", "arguments": {"ok": true}}})
            .to_string(),
        );
        assert_eq!(reply["id"], 99, "{reply}");
        assert_eq!(
            reply["result"]["structuredContent"]["arguments"]["ok"], true,
            "{reply}"
        );
    }
}

#[test]
fn malformed_json_gets_parse_error() {
    let mut gateway = StdioGateway::start();
    let reply = gateway.exchange("{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\"");
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    assert_eq!(reply["id"], Value::Null, "{reply}");
    gateway.assert_still_works();
}

#[test]
fn json_that_is_not_json_rpc_gets_invalid_request_with_its_id() {
    let mut gateway = StdioGateway::start();
    let reply = gateway.exchange("{\"id\": 5, \"what\": \"ever\"}");
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["id"], 5, "{reply}");
    gateway.assert_still_works();
}

#[test]
fn unknown_method_unknown_tool_and_invalid_params_get_their_codes() {
    let mut gateway = StdioGateway::start();
    let cases = [
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}),
            -32601,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "fx__nope"}}),
            -32602,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"arguments": 7}}),
            -32602,
        ),
    ];
    for (request, code) in cases {
        let reply = gateway.exchange(&request.to_string());
        assert_eq!(reply["id"], request["id"], "{reply}");
        assert_eq!(reply["error"]["code"], code, "{request} → {reply}");
    }
    gateway.assert_still_works();
}

#[test]
fn oversized_line_gets_an_error_and_is_not_buffered() {
    let mut gateway = StdioGateway::start();
    let huge = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"blob": "x".repeat(100_000)}}});
    let reply = gateway.exchange(&huge.to_string());
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"].as_str().unwrap().contains("4096"),
        "{reply}"
    );
    gateway.assert_still_works();
}

#[test]
fn deep_nesting_is_rejected_without_a_stack_overflow() {
    let mut gateway = StdioGateway::start();
    // Far past serde_json's own bound (within this gateway's 4 KiB lines), and just past
    // limits.max_json_depth (64) but within serde_json's: both are refused by our limit, as
    // valid JSON that is too deep.
    for depth in [1900, 64] {
        let line = format!(
            "{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"ping\", \"params\": {{\"x\": {}{}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let reply = gateway.exchange(&line);
        assert_eq!(reply["error"]["code"], -32600, "{depth}: {reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("max_json_depth"), "{reply}");
    }
    gateway.assert_still_works();
}
