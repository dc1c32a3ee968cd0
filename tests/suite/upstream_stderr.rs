//! An upstream's stderr reaches our log line by line, under its name, with long lines cut.

use crate::common;

use common::{fixture_upstream_yaml, process::ServeProcess};

#[test]
fn stderr_lines_are_logged_with_the_upstream_name_and_capped() {
    let yaml = format!(
        "limits:\n  stderr_line_bytes: 100\nupstreams:\n{}",
        fixture_upstream_yaml("noisy", "noisy", &["echo"], "")
            .replace("\"--tool\"", "\"--stderr-line\", \"5000\", \"--tool\"")
    );
    let gateway = ServeProcess::start(&yaml);
    let log = gateway.log();
    let starting = log
        .lines()
        .find(|line| line.contains("fixture upstream noisy starting"))
        .unwrap_or_else(|| panic!("stderr line not logged:\n{log}"));
    assert!(starting.contains("upstream=noisy"), "{starting}");
    let cut = log
        .lines()
        .find(|line| line.contains("line cut at 100 bytes"))
        .unwrap_or_else(|| panic!("long line not cut:\n{log}"));
    assert!(
        cut.contains(&"x".repeat(100)) && !cut.contains(&"x".repeat(101)),
        "{cut}"
    );
}
