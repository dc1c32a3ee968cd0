//! `${VAR:default}` expansion from the environment and from a `.env` file beside the config.

use mcps::config::Config;

#[test]
fn dot_env_beside_the_config_fills_variables_without_overriding_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "MCPS_TEST_DOTENV_PORT=9123\nMCPS_TEST_DOTENV_HOST=10.1.2.3\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("proxy.yaml"),
        "server:\n  listen: \"${MCPS_TEST_DOTENV_HOST:127.0.0.1}:${MCPS_TEST_DOTENV_PORT:8000}\"\ntimeouts:\n  call_secs: ${MCPS_TEST_DOTENV_UNSET:7}\n",
    )
    .unwrap();
    // The real environment wins over .env.
    // SAFETY: this test binary sets the variable before any other thread reads the environment.
    unsafe { std::env::set_var("MCPS_TEST_DOTENV_HOST", "127.0.0.9") };
    let config = Config::load(&dir.path().join("proxy.yaml")).unwrap();
    assert_eq!(config.server.listen, "127.0.0.9:9123");
    assert_eq!(config.timeouts.call_secs, 7.0);
    assert_eq!(config.base_dir, dir.path());
}
