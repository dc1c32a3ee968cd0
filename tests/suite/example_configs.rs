//! The example files are kept true: every `examples/proxy/*.yaml` is a valid configuration
//! (loaded and validated as `mcps serve` would, without starting its upstreams), and every
//! client config in `examples/clients/` is one `mcps import` reads, naming the gateway, and
//! the systemd unit's command line is one the CLI accepts.

use crate::common;

use std::path::PathBuf;

use common::process::{ConfigDir, run_mcps};

fn files_in(dir: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no examples in {}", dir.display());
    files
}

#[test]
fn every_example_proxy_yaml_is_valid() {
    for file in files_in("examples/proxy") {
        let config = mcps::config::Config::load(&file)
            .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        assert!(!config.upstreams.is_empty(), "{}", file.display());
    }
}

#[test]
fn every_example_client_config_launches_the_gateway() {
    let dir = ConfigDir::new("");
    for file in files_in("examples/clients") {
        let (status, yaml, notes) = run_mcps(&dir.path(), &["import", file.to_str().unwrap()]);
        assert!(status.success(), "{}: {notes}", file.display());
        assert!(yaml.contains("  mcps:\n"), "{}: {yaml}", file.display());
        assert!(yaml.contains("- stdio"), "{}: {yaml}", file.display());
    }
}

#[test]
fn the_systemd_unit_runs_commands_the_cli_accepts() {
    let unit = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/mcps.service"),
    )
    .unwrap();
    let exec_start = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart=/usr/local/bin/mcps "))
        .expect("ExecStart runs mcps");
    // The unit's arguments, on a config that is not there: the CLI accepts them and the
    // gateway then fails on the missing file, not on its command line.
    let missing = tempfile::tempdir().unwrap();
    let args: Vec<String> = exec_start
        .replace(
            "/etc/mcps/proxy.yaml",
            &missing.path().join("proxy.yaml").display().to_string(),
        )
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let output = std::process::Command::new(common::mcps_bin())
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "reload is SIGHUP"
    );
}
