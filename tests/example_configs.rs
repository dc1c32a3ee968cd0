//! The example files are kept true: every `examples/proxy/*.yaml` is a valid configuration
//! (loaded and validated as `mcps serve` would, without starting its upstreams), and every
//! client config in `examples/clients/` is one `mcps import` reads, naming the gateway.

mod common;

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
