//! `${VAR:default}` expansion from the environment and from a `.env` file beside the config.
//!
//! Loading a config sets the `.env`'s variables in the process environment, which no test may
//! do while other tests' threads read it: the gateway loads it in a process of its own here,
//! and `mcps health` says which address the expanded `server.listen` came to.

use std::process::Command;

use crate::common::mcps_bin;

#[test]
fn dot_env_beside_the_config_fills_variables_without_overriding_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "MCPS_TEST_DOTENV_PORT=9\nMCPS_TEST_DOTENV_HOST=10.1.2.3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("proxy.yaml"),
        "server:\n  listen: \"${MCPS_TEST_DOTENV_HOST:127.0.0.1}:${MCPS_TEST_DOTENV_PORT:8000}\"\ntimeouts:\n  call_secs: ${MCPS_TEST_DOTENV_UNSET:7}\n",
    )
    .unwrap();
    // The real environment wins over .env; nothing listens on port 9 (discard) there.
    let output = Command::new(mcps_bin())
        .arg("-c")
        .arg(dir.path().join("proxy.yaml"))
        .arg("health")
        .env("MCPS_TEST_DOTENV_HOST", "127.0.0.9")
        .env_remove("MCPS_TEST_DOTENV_PORT")
        .env_remove("MCPS_TEST_DOTENV_UNSET")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "nothing listens there: {said}");
    assert!(
        said.contains("http://127.0.0.9:9/api/v1/system/health"),
        "the host from the environment, the port from .env: {said}"
    );
}
