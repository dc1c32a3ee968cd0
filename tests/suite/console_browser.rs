//! The web console in Debian's Chromium, driven by playwright-core (tests/browser/console.cjs):
//! on the shipped proxy.yaml, signing in, both shipped upstreams ready, live updates, the
//! Chinese pages, signing out; no request leaves the gateway, no page logs an error, and
//! axe-core finds no serious or critical violation. The pages' screenshots land in
//! docs/screenshots/, which README links.

use crate::common;

use std::{path::Path, process::Command};

use common::{
    everything_command, installed,
    process::{ConfigDir, ServeProcess},
};

const PASSWORD: &str = "the console's test password";

/// The shipped proxy.yaml, with the reference server run from the installed package rather
/// than fetched by npx.
fn shipped_config() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("proxy.yaml")).unwrap();
    let (node, everything) = everything_command();
    let fetched = "    command: npx\n    args: [\"-y\", \"@modelcontextprotocol/server-everything@2026.8.31\"]\n";
    assert!(
        shipped.contains(fetched),
        "the shipped everything entry changed"
    );
    shipped.replace(
        fetched,
        &format!("    command: {node:?}\n    args: [{everything:?}]\n"),
    )
}

#[test]
fn the_console_works_in_chromium() {
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&shipped_config()),
        &[("MCPS_ADMIN_PASSWORD", PASSWORD)],
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(installed("MCPS_TEST_NODE"))
        .arg(root.join("tests/browser/console.cjs"))
        .args([gateway.base.as_str(), PASSWORD])
        .arg(root.join("docs/screenshots"))
        .env("NODE_PATH", installed("MCPS_TEST_NODE_PATH"))
        .env("MCPS_TEST_CHROMIUM", installed("MCPS_TEST_CHROMIUM"))
        .env("MCPS_TEST_AXE", installed("MCPS_TEST_AXE"))
        .output()
        .expect("run node");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{said}\ngateway log:\n{}",
        gateway.log()
    );
    assert!(said.contains("the console works in Chromium"), "{said}");
}
