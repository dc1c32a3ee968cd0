//! The web console in Debian's Chromium, driven by playwright-core (tests/browser/console.cjs):
//! on the shipped proxy.yaml, signing in, both shipped upstreams ready, live updates, the
//! Chinese pages, adding a stdio upstream through the form and seeing it ready, calling one of
//! its tools from its try-it form, finding the call in the history, disabling, enabling and
//! editing, deleting the upstream, signing the gateway in to an OAuth upstream (the Python SDK's
//! authorization server) with the Authorize button, the config page and its reload, signing
//! out; no request leaves this machine (none but the authorization server's leaves the
//! gateway), no page logs an error, and axe-core finds no serious or critical violation. The
//! pages' screenshots land in docs/screenshots/, which README links.

use crate::{common, upstream_oauth::OAuthServer};

use std::{path::Path, process::Command};

use common::{
    everything_command, installed,
    process::{ConfigDir, ServeProcess},
};

const PASSWORD: &str = "the console's test password";

/// The shipped proxy.yaml, with the reference server run from the installed package rather
/// than fetched by npx; by paths relative to the package folder, so that the screenshots
/// show no path of the machine that took them. And one more upstream, `remote`, behind
/// OAuth at `oauth_upstream`.
fn shipped_config(oauth_upstream: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join("proxy.yaml")).unwrap();
    let (_, everything) = everything_command();
    let packages = Path::new(&installed("MCPS_TEST_NODE_PATH")).to_owned();
    let everything = Path::new(&everything)
        .strip_prefix(&packages)
        .expect("the reference server is among the installed packages")
        .to_owned();
    let fetched = "    command: npx\n    args: [\"-y\", \"@modelcontextprotocol/server-everything@2026.8.31\"]\n";
    assert!(
        shipped.contains(fetched),
        "the shipped everything entry changed"
    );
    // The upstream the test adds through the console runs the gateway's own demo server.
    let allowlist = "  spawn_allowlist: []\n";
    assert!(shipped.contains(allowlist), "the shipped allowlist changed");
    shipped
        .replace(
            fetched,
            &format!(
                "    command: node\n    args: [{:?}]\n    cwd: {:?}\n",
                everything.display().to_string(),
                packages.display().to_string()
            ),
        )
        .replace(allowlist, "  spawn_allowlist: [\"mcps\"]\n")
        + &format!("  remote:\n    url: {oauth_upstream:?}\n    oauth: {{}}\n")
}

#[test]
fn the_console_works_in_chromium() {
    // `node` is found on the PATH, beside the pinned Node.
    let node = installed("MCPS_TEST_NODE");
    let path = format!(
        "{}:{}",
        Path::new(&node).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let authorization_server = OAuthServer::start(3600);
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&shipped_config(authorization_server.url())),
        &[("MCPS_ADMIN_PASSWORD", PASSWORD), ("PATH", &path)],
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(installed("MCPS_TEST_NODE"))
        .arg(root.join("tests/browser/console.cjs"))
        .args([gateway.base.as_str(), PASSWORD])
        .arg(root.join("docs/screenshots"))
        .arg(authorization_server.url())
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
