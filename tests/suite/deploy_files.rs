//! deploy/: the Compose file, nginx's config, the team's proxy.yaml and the Kubernetes
//! manifests, checked with what runs here (no container engine, no cluster): the Compose
//! specification (the `compose_spec` crate), the Kubernetes API's schemas
//! (`kubernetes-validate`, strict), and for nginx.conf and proxy.yaml the real things: nginx on
//! that config in front of two gateways on that proxy.yaml and one PostgreSQL.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use crate::common;

use common::{
    api::{ADMIN_PASSWORD, Api},
    balancer::Balancer,
    http::{RawSession, metric},
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
};
use compose_spec::Compose;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy().join(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn yaml(name: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let text = read("docker-compose.yml");
    let compose = Compose::options()
        .from_yaml_str(&text)
        .unwrap_or_else(|error| panic!("docker-compose.yml: {error}"));
    compose.validate_all().expect("every named volume declared");
    let names: Vec<&str> = compose.services.keys().map(|name| name.as_str()).collect();
    assert_eq!(names, ["postgres", "gateway", "nginx"]);

    // What the file promises, read as plain YAML: two replicas, waiting for PostgreSQL, their
    // secrets from secrets.env, and files of this directory mounted.
    let file = yaml("docker-compose.yml");
    let gateway = &file["services"]["gateway"];
    assert_eq!(gateway["deploy"]["replicas"], 2);
    assert_eq!(
        gateway["depends_on"]["postgres"]["condition"],
        "service_healthy"
    );
    assert_eq!(gateway["env_file"], "secrets.env");
    assert_eq!(gateway["build"]["context"], "..");
    assert!(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("Dockerfile")
            .exists()
    );
    for service in ["gateway", "nginx"] {
        for mount in file["services"][service]["volumes"].as_sequence().unwrap() {
            let source = mount.as_str().unwrap().split(':').next().unwrap();
            assert!(deploy().join(source).exists(), "{service} mounts {source}");
        }
    }

    // The specification has teeth: a misspelt key is refused.
    let misspelt = text.replace("env_file:", "env_flie:");
    assert!(Compose::options().from_yaml_str(&misspelt).is_err());
}

/// Every `${NAME}` (without a default) that proxy.yaml needs from the environment.
fn required_variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(reference, _)| reference))
        .filter(|reference| !reference.contains(':'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_kubernetes_manifests_follow_the_api_schemas() {
    let manifests: Vec<PathBuf> = std::fs::read_dir(deploy().join("kubernetes"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    // An old cluster still in use and the newest the tool knows.
    for version in ["1.30.0", "1.37.0"] {
        let output = Command::new(common::installed("MCPS_TEST_KUBERNETES_VALIDATE"))
            .args(["--strict", "--kubernetes-version", version])
            .args(&manifests)
            .output()
            .expect("run kubernetes-validate");
        let said = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "Kubernetes {version}:\n{said}");
        assert_eq!(
            said.matches(" passed for resource ").count(),
            3,
            "a Deployment, a Service and a PodDisruptionBudget:\n{said}"
        );
    }

    // The kustomization names files that are there, and the names the Deployment uses are
    // the ones it generates.
    let kustomization = yaml("kustomization.yaml");
    for resource in kustomization["resources"].as_sequence().unwrap() {
        assert!(deploy().join(resource.as_str().unwrap()).exists());
    }
    let config = &kustomization["configMapGenerator"][0];
    let secrets = &kustomization["secretGenerator"][0];
    assert_eq!(config["files"][0], "proxy.yaml");
    assert_eq!(secrets["envs"][0], "secrets.env");
    let deployment = yaml("kubernetes/deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["configMap"]["name"], config["name"]);
    let container = &pod["containers"][0];
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        secrets["name"]
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/api/v1/system/health");
    }

    // secrets.env (from its example) gives proxy.yaml every variable it has no default for,
    // and is kept out of git.
    let example = read("secrets.env.example");
    let given: BTreeSet<String> = example
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.to_owned()))
        .collect();
    let needed = required_variables(&read("proxy.yaml"));
    assert_eq!(
        needed,
        BTreeSet::from(["DATABASE_URL".into(), "SECRET_KEY".into()])
    );
    assert!(needed.is_subset(&given), "{needed:?} ⊄ {given:?}");
    let ignored =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|line| line == "deploy/secrets.env"));
}

/// deploy/nginx.conf with `gateway:8000` standing for `backends`, on `port`.
fn nginx_config(port: u16, backends: &[&ServeProcess]) -> String {
    let servers: String = backends
        .iter()
        .map(|gateway| {
            format!(
                "server {};\n        ",
                gateway.base.trim_start_matches("http://")
            )
        })
        .collect();
    let config = read("nginx.conf");
    assert!(config.contains("server gateway:8000;") && config.contains("listen 80;"));
    config
        .replace("server gateway:8000;", servers.trim_end())
        .replace("listen 80;", &format!("listen 127.0.0.1:{port};"))
        .replace("worker_processes auto;", "worker_processes 1;")
}

/// The team's proxy.yaml, two replicas on one PostgreSQL, behind deploy/nginx.conf: the health
/// check the probes use answers, a session-era client's calls go round both replicas, and a
/// WebSocket session upgrades through nginx.
#[tokio::test]
async fn nginx_in_front_of_two_replicas_on_the_team_config() {
    let url = fresh_database().await;
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("SECRET_KEY", "the replicas' key"),
        ("MCPS_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ];
    let replicas: Vec<ServeProcess> = (0..2)
        .map(|_| ServeProcess::start_in(ConfigDir::new(&read("proxy.yaml")), &env))
        .collect();
    let balancer = Balancer::run(|port| nginx_config(port, &replicas.iter().collect::<Vec<_>>()));

    // The probes' request, through nginx.
    let health = common::http::client()
        .get(balancer.url("/api/v1/system/health"))
        .header("host", "localhost")
        .send()
        .await
        .expect("GET the health endpoint");
    assert_eq!(health.status(), StatusCode::OK);

    let admin = Api::logged_in(&replicas[0]).await;
    let key = admin.create_key("deploy test").await;
    let bearer = format!("Bearer {key}");
    let mut session =
        RawSession::open_with(&balancer.url("/mcp"), &[("Authorization", bearer.as_str())]).await;
    for n in 0..4 {
        let reply = session
            .call("hello__greet", json!({"name": format!("replica {n}")}))
            .await;
        assert!(
            reply["result"]["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.contains(&format!("replica {n}"))),
            "{reply}"
        );
    }
    for (n, replica) in replicas.iter().enumerate() {
        let served = metric(&replica.base, Some(&key), "mcps_tool_calls_total{").await;
        assert!(served > 0, "replica {n} served none of the calls");
    }

    let mut request = balancer
        .url("/ws")
        .replace("http://", "ws://")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a WebSocket through nginx");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "through nginx", "version": "0"}}});
    socket
        .send(Message::text(initialize.to_string()))
        .await
        .unwrap();
    let answer = loop {
        match socket.next().await.expect("an answer").expect("a frame") {
            Message::Text(text) => break text,
            _ => continue,
        }
    };
    assert!(answer.contains("\"protocolVersion\""), "{answer}");
}
