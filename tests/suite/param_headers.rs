//! SEP-2243's header arguments through the gateway: a 2026-07-28 `tools/call` of a tool whose
//! input schema marks arguments `x-mcp-header` carries them in `Mcp-Param-*` headers too. The
//! gateway, the server its clients talk to, checks the client's headers against the body on
//! its own way (`downstream/http/param_headers.rs`) and refuses a disagreement as rmcp does;
//! its lane writes the upstream's from the upstream's own definition of the tool. Each SDK's
//! server of such a tool (`routed`, the conformance fixtures' `--header-arguments`) stands
//! behind it, and the conformance suite's header scenarios run against the gateway.

use crate::{
    common,
    tool_call_lane::{meta, post_call},
};

use common::{
    conformance_scenario,
    fixtures::{HttpFixture, Implementation},
    process::{ConfigDir, ServeProcess},
};
use serde_json::{Value, json};

/// A gateway, logging at debug (which says which way each call went), that offers the tools
/// of the fixture at `url`, reached in 2026-07-28, under their own names; ready.
fn unprefixed_in_front_of(url: &str) -> ServeProcess {
    let yaml =
        format!("upstreams:\n  fx:\n    url: {url:?}\n    prefix: \"\"\n    protocol: modern\n");
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    gateway.wait_ready(std::time::Duration::from_secs(30));
    gateway
}

/// More headers for a call: names and values.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// How many calls the gateway refused on its own way for headers that disagree.
fn refused_on_its_own_way(gateway: &ServeProcess) -> usize {
    gateway
        .log()
        .lines()
        .filter(|line| line.contains("a call's headers disagree with its arguments"))
        .count()
}

/// `routed` behind each SDK's 2026-07-28 server, which refuses a call whose headers and body
/// disagree (-32020). Called with the client's headers, the gateway checks them and the call
/// takes its own way; with all of its header arguments pinned, the client sees a tool without
/// them, and the call takes the same way. Either way the lane writes the headers the
/// upstream's own definition asks for from the arguments it sends: in Base64 where a header
/// cannot carry a value as it is, with the values the client neither sees nor sends. A
/// session-era client's call, which carries no such headers, takes the same way.
#[tokio::test]
async fn arguments_that_go_in_headers_are_written_on_the_lane_pinned_ones_included() {
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start_with(implementation, &["--header-arguments"]);
        let yaml = format!(
            "upstreams:\n  fx:\n    url: {url:?}\n    protocol: modern\n  \
             pin:\n    url: {url:?}\n    protocol: modern\n    tools:\n      routed:\n        \
             arguments: {{region: \" pinned \", shard: 42, dry: true, where: {{zone: Zürich}}}}\n",
            url = fixture.url
        );
        let gateway = ServeProcess::start_in(
            ConfigDir::new(&yaml),
            &[("RUST_LOG", "mcps=debug,rmcp=warn")],
        );
        gateway.wait_ready(std::time::Duration::from_secs(30));
        let calls = [
            (
                "fx__routed",
                json!({"region": "eu-west", "shard": 7, "dry": true, "where": {"zone": "Zürich"}, "note": "n"}),
                vec![
                    ("mcp-param-region", "eu-west"),
                    ("mcp-param-shard", "7"),
                    ("mcp-param-dry", "true"),
                    ("mcp-param-zone", "=?base64?WsO8cmljaA==?="),
                ],
                "region=eu-west shard=7 dry=true zone=Zürich",
            ),
            (
                "fx__routed",
                json!({"shard": 0, "dry": false}),
                vec![("mcp-param-shard", "0"), ("mcp-param-dry", "false")],
                "region=- shard=0 dry=false zone=-",
            ),
            (
                "pin__routed",
                json!({"note": "n"}),
                vec![],
                "region= pinned  shard=42 dry=true zone=Zürich",
            ),
        ];
        for (name, arguments, headers, expected) in &calls {
            let (status, answer) = post_call(
                &gateway.mcp_url(),
                name,
                headers,
                json!({"_meta": meta(), "name": name, "arguments": arguments}),
            )
            .await;
            assert_eq!(status, 200, "{label}, {arguments}: {answer}");
            assert_eq!(
                answer["result"]["content"][0]["text"], *expected,
                "{label}, {arguments}: {answer}"
            );
        }
        // A session-era client sends no such headers; the upstream still gets its own.
        let mut session = common::http::RawSession::open(&gateway.mcp_url()).await;
        let answer = session
            .call("fx__routed", json!({"region": "eu-west", "shard": 3}))
            .await;
        assert_eq!(
            answer["result"]["content"][0]["text"], "region=eu-west shard=3 dry=false zone=-",
            "{label}: {answer}"
        );
        gateway.calls_done(calls.len() + 1).await;
        let log = gateway.log();
        assert_eq!(
            gateway.typed_on_the_lane("tools/call"),
            0,
            "{label}: none on rmcp's typed way:\n{log}"
        );
        assert_eq!(
            gateway.lane_calls(),
            calls.len() + 1,
            "{label}: every call the gateway's own way:\n{log}"
        );
    }
}

/// The calls whose headers disagree with their bodies, each refused with -32020 and HTTP 400
/// by the gateway on its own way, in the words of rmcp's server, which checks them the
/// same way: the rmcp fixture, asked directly, answers each with the very same error. The
/// TypeScript and Python SDKs' servers refuse them too, with the same code, but for a header
/// whose argument is absent or null, which they do not read; the gateway refuses that on
/// both its ways, as rmcp does.
#[tokio::test]
async fn calls_whose_headers_disagree_with_the_body_are_refused_as_the_sdks_refuse_them() {
    let cases: [(&str, Value, Headers<'_>); 6] = [
        ("missing", json!({"region": "eu"}), &[]),
        (
            "another value",
            json!({"region": "eu"}),
            &[("mcp-param-region", "us")],
        ),
        (
            "another nested value",
            json!({"where": {"zone": "b"}}),
            &[("mcp-param-zone", "a")],
        ),
        (
            "a header for an absent argument",
            json!({"dry": null}),
            &[("mcp-param-dry", "true"), ("mcp-param-shard", "7")],
        ),
        (
            "Base64 without its padding",
            json!({"region": "eu"}),
            &[("mcp-param-region", "=?base64?ZXU?=")],
        ),
        (
            "the header twice",
            json!({"shard": 7}),
            &[("mcp-param-shard", "7"), ("mcp-param-shard", "7")],
        ),
    ];
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start_with(implementation, &["--header-arguments"]);
        let gateway = unprefixed_in_front_of(&fixture.url);
        for (case, arguments, headers) in &cases {
            let params = json!({"_meta": meta(), "name": "routed", "arguments": arguments});
            let (status, through) =
                post_call(&gateway.mcp_url(), "routed", headers, params.clone()).await;
            let (direct_status, direct) = post_call(&fixture.url, "routed", headers, params).await;
            // The TypeScript and Python SDKs do not read a header whose argument is absent.
            if implementation == Implementation::Rust || !case.starts_with("a header for") {
                assert_eq!(
                    (direct_status, &direct["error"]["code"]),
                    (400, &json!(-32020)),
                    "{label}, {case}, directly: {direct}"
                );
            }
            assert_eq!(status, 400, "{label}, {case}: {through}");
            assert_eq!(through["id"], "call-1", "{label}, {case}: {through}");
            if implementation == Implementation::Rust {
                assert_eq!(through["error"], direct["error"], "{label}, {case}");
            } else {
                assert_eq!(
                    through["error"]["code"], -32020,
                    "{label}, {case}: {through}"
                );
            }
        }
        assert_eq!(
            refused_on_its_own_way(&gateway),
            cases.len(),
            "{label}:\n{}",
            gateway.log()
        );
        assert_eq!(
            gateway.lane_calls(),
            0,
            "{label}: none reached the upstream"
        );
    }
}

/// A virtual server that pins some of a tool's header arguments offers the tool without them:
/// its clients send the headers of the others alone, which the gateway checks, and the
/// upstream gets all of its own, the pinned values included. A virtual server over the same
/// tool that pins nothing checks them all. (What a tool marks is worked out once for each
/// view of it, where the view is made.) The TypeScript SDK's server stands behind it.
#[tokio::test]
async fn a_virtual_servers_pinned_header_arguments_are_neither_asked_for_nor_lost() {
    let fixture = HttpFixture::start_with(Implementation::TypeScript, &["--header-arguments"]);
    let yaml = format!(
        "virtual_servers:\n  pinned:\n    upstreams: [fx]\n    tools:\n      fx__routed:\n        \
         arguments: {{region: eu-central, shard: 5}}\n  everything:\n    upstreams: [fx]\n\
         upstreams:\n  fx:\n    url: {url:?}\n    protocol: modern\n",
        url = fixture.url
    );
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    gateway.wait_ready(std::time::Duration::from_secs(30));
    let pinned = format!("{}/pinned", gateway.mcp_url());
    let everything = format!("{}/everything", gateway.mcp_url());
    let call =
        |arguments: Value| json!({"_meta": meta(), "name": "fx__routed", "arguments": arguments});

    let both = [("mcp-param-dry", "true"), ("mcp-param-zone", "Bern")];
    let arguments = json!({"dry": true, "where": {"zone": "Bern"}});
    let (status, answer) = post_call(&pinned, "fx__routed", &both, call(arguments.clone())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["result"]["content"][0]["text"], "region=eu-central shard=5 dry=true zone=Bern",
        "{answer}"
    );
    // What the view still marks is checked.
    let (status, answer) = post_call(
        &pinned,
        "fx__routed",
        &[("mcp-param-dry", "false"), ("mcp-param-zone", "Bern")],
        call(arguments.clone()),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!(-32020)),
        "{answer}"
    );
    // The view without pins asks for the region and shard the client sends.
    let (status, answer) = post_call(
        &everything,
        "fx__routed",
        &both,
        call(json!({"region": "eu", "dry": true, "where": {"zone": "Bern"}})),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!(-32020)),
        "{answer}"
    );

    // The log is read as the gateway writes it: wait for both lines, then hold that there are
    // no more.
    let refusal = "a call's headers disagree with its arguments";
    common::wait_logged(|| gateway.log(), refusal, 2).await;
    assert_eq!(refused_on_its_own_way(&gateway), 2, "{}", gateway.log());
    gateway.calls_done(1).await;
    assert_eq!(gateway.lane_calls(), 1, "{}", gateway.log());
}

/// Runs one scenario of the conformance suite's 0.2 line against the server at `url`; the
/// checks it passed, of how many, and what it printed.
fn scenario(url: &str, name: &str) -> (usize, usize, String) {
    let (_, text) = conformance_scenario(url, name);
    let counts = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Passed: "))
        .and_then(|rest| {
            let (passed, rest) = rest.split_once('/')?;
            let total = rest.split(',').next()?;
            Some((passed.parse().ok()?, total.parse().ok()?))
        });
    let (passed, total) = counts.unwrap_or_else(|| panic!("{name}: no count in\n{text}"));
    (passed, total, text)
}

/// The conformance suite's own checks of a server's SEP-2243 headers, written by someone
/// else: `http-custom-header-server-validation` calls `routed` with its arguments' headers in
/// Base64, with padding left out, with characters outside the alphabet, as literal text that
/// only looks encoded, and without one; `http-header-validation` sends `Mcp-Method` and
/// `Mcp-Name` that disagree or are missing, and a name between spaces. Each SDK's server
/// passes them directly; through the gateway they pass too, every call the scenarios make
/// that the gateway serves going its own way, and every `Mcp-Param-*` refusal its own.
#[tokio::test]
async fn the_conformance_suites_header_scenarios_pass_through_the_gateways_own_way() {
    const SCENARIOS: [&str; 2] = [
        "http-custom-header-server-validation",
        "http-header-validation",
    ];
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start_with(implementation, &["--header-arguments"]);
        let gateway = unprefixed_in_front_of(&fixture.url);
        for name in SCENARIOS {
            let (passed, total, output) = scenario(&fixture.url, name);
            assert!(
                total > 0 && passed == total,
                "{label}, {name}, directly:\n{output}"
            );
            let (passed, total, output) = scenario(&gateway.mcp_url(), name);
            assert!(
                total > 0 && passed == total,
                "{label}, {name}, through the gateway:\n{output}\n{}",
                gateway.log()
            );
        }
        let log = gateway.log();
        // Padding left out, characters outside the alphabet, the header missing.
        assert_eq!(refused_on_its_own_way(&gateway), 3, "{label}:\n{log}");
        assert!(gateway.lane_calls() >= 4, "{label}:\n{log}");
        assert_eq!(
            gateway.typed_on_the_lane("tools/call"),
            0,
            "{label}: none on rmcp's typed way:\n{log}"
        );
    }
}
