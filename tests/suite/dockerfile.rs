//! The Dockerfile, without a container engine: its build stage's steps run here (the files
//! it copies, nothing else, checked with its cargo command), and its final stage is the
//! image we promise: multi-stage, a non-root user, a data volume, and a health check whose
//! command answers for a running gateway and fails for a missing one.

use crate::common;

use std::{path::Path, process::Command};

use common::{
    free_port, mcps_bin,
    process::{ConfigDir, ServeProcess},
};

/// The Dockerfile's instructions by stage, continuation lines joined, comments dropped.
fn stages() -> Vec<Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stages: Vec<Vec<String>> = Vec::new();
    for line in joined.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("FROM first").push(line.to_owned());
    }
    stages
}

fn arguments<'a>(stage: &'a [String], instruction: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter_map(|line| line.strip_prefix(instruction)?.strip_prefix(' '))
        .collect()
}

#[test]
fn the_build_stage_builds_from_the_files_it_copies() {
    let stages = stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let build = &stages[0];
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let context = tempfile::tempdir().unwrap();
    for copy in arguments(build, "COPY") {
        let mut parts: Vec<&str> = copy.split_whitespace().collect();
        let destination = parts.pop().unwrap();
        for source in parts {
            let to = if destination.ends_with('/') {
                context.path().join(destination).join(source)
            } else {
                context.path().join(destination)
            };
            copy_tree(&root.join(source), &to);
        }
    }
    let run = arguments(build, "RUN");
    assert_eq!(run.len(), 1, "{run:?}");
    let mut words: Vec<&str> = run[0].split_whitespace().collect();
    assert_eq!(&words[..3], ["cargo", "build", "--release"], "{run:?}");
    // The same cargo command, type-checked instead of optimised (the image does the
    // slow part), offline, and sharing this suite's compiled dependencies.
    words.splice(1..3, ["check", "--offline"]);
    let output = Command::new(env!("CARGO"))
        .args(&words[1..])
        .current_dir(context.path())
        .env("CARGO_TARGET_DIR", root.join("target"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the build stage's command fails on the files it copies: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_final_stage_runs_unprivileged_with_a_volume_and_a_health_check() {
    let stages = stages();
    let last = stages.last().unwrap();
    let user = arguments(last, "USER");
    assert!(
        matches!(user.as_slice(), [user] if *user != "root" && *user != "0"),
        "{user:?}"
    );
    assert_eq!(arguments(last, "VOLUME"), ["[\"/app/data\"]"]);
    let health = arguments(last, "HEALTHCHECK");
    assert_eq!(health.len(), 1);
    assert!(
        health[0].contains("CMD [\"mcps\", \"health\", \"-c\", \"/app/proxy.yaml\"]"),
        "{health:?}"
    );
    // Every binary the final stage takes from the build stage is one the build makes.
    let built = arguments(&stages[0], "RUN").join(" ");
    for copy in arguments(last, "COPY") {
        if let Some(from_build) = copy.strip_prefix("--from=build ") {
            let source = from_build.split_whitespace().next().unwrap();
            let name = source.rsplit('/').next().unwrap();
            assert!(built.contains(name), "{source} is not built by: {built}");
        }
    }
}

#[test]
fn the_health_check_command_answers_for_a_running_gateway_only() {
    let gateway = ServeProcess::start("upstreams: {}\n");
    let output = Command::new(mcps_bin())
        .args(["health", "--url", &gateway.base])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let output = Command::new(mcps_bin())
        .args(["health", "--url", &format!("http://{address}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

/// The system's proxy settings are for reaching out: `mcps health` and `mcps tools` reach the
/// gateway on this machine directly, or a container whose outbound traffic goes through a
/// proxy would send its own health check there, and be found unhealthy. Here the proxy named
/// is one nothing listens on.
#[test]
fn the_cli_reaches_the_gateway_on_this_machine_past_the_systems_proxy() {
    let address = format!("127.0.0.1:{}", free_port());
    let config = ConfigDir::new(&format!(
        "server:\n  listen: {address:?}\nupstreams: {{}}\n"
    ));
    let config_file = config.dir.path().join("proxy.yaml");
    let _gateway = ServeProcess::start_listening(config, &[], &address);
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let cli = |args: &[&str]| {
        let mut command = Command::new(mcps_bin());
        command.arg("-c").arg(&config_file).args(args);
        for name in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
        ] {
            command.env(name, &nowhere);
        }
        command.env_remove("NO_PROXY").env_remove("no_proxy");
        command.output().unwrap()
    };
    let port = address.rsplit(':').next().unwrap();
    for args in [
        vec!["health"],
        vec!["health", "--url", &format!("http://localhost:{port}")],
    ] {
        let output = cli(&args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
    }
    let output = cli(&["tools"]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("using the gateway running at"),
        "{output:?}"
    );
}

/// Copies a file, or a directory and everything in it.
fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}
