//! Scenario 7, replicas: 1, 2 and 3 gateways on one PostgreSQL registry behind nginx (plain
//! round robin), each with its own stdio echo upstream, loaded through nginx at 64 clients in
//! both eras; beside them one gateway loaded directly, which each row is a ratio of. With the
//! CPU per call of the gateways (summed), of nginx and of PostgreSQL, and what the database
//! wrote per 1,000 calls (transactions and rows, from `pg_stat_database`).
//!
//! It needs the PostgreSQL and nginx that `tests/postgres.sh` and `tests/nginx.sh` provide
//! (`benches/run.sh` sources both); without them it says so and is skipped.

use std::{process::Command, time::Duration};

use crate::{
    calls_per_client,
    load::{self, Era, Measured},
    micros, ms,
    procs::{self, Process, echo_stdio_entry, free_port, gateway_with, start_listening},
};

/// What one configuration measured.
struct Row {
    target: String,
    era: Era,
    measured: Measured,
    gateways_cpu: Duration,
    nginx_cpu: Option<Duration>,
    postgres_cpu: Duration,
    commits: i64,
    rows: i64,
}

pub async fn scenario(quick: bool) {
    let (Ok(server), Ok(nginx)) = (
        std::env::var("MCPS_TEST_POSTGRES_URL"),
        std::env::var("MCPS_TEST_NGINX"),
    ) else {
        println!(
            "## 7. Replicas\n\nSkipped: source tests/postgres.sh and tests/nginx.sh first (benches/run.sh does).\n"
        );
        return;
    };
    let clients = 64;
    let calls = calls_per_client(clients, quick);
    let mut rows = Vec::new();
    for replicas in [0, 1, 2, 3] {
        let database = fresh_database(&server, replicas).await;
        let settings =
            format!("database:\n  url: {database:?}\n  secret_key: the benchmark's replicas\n");
        let gateways: Vec<(Process, String)> = (0..replicas.max(1))
            .map(|_| gateway_with(&settings, &echo_stdio_entry("echo")))
            .collect();
        let balancer = (replicas > 0).then(|| balance(&nginx, &gateways));
        let url = match &balancer {
            Some((_, url)) => url.clone(),
            None => gateways[0].1.clone(),
        };
        // What start-up wrote (the migrations, the first user) is counted before the load.
        tokio::time::sleep(STATISTICS_LAG).await;
        let mut written_before = Written::now(&database).await;
        for era in [Era::Legacy, Era::Modern] {
            let before = Cpu::now(&gateways, balancer.as_ref());
            let measured = load::run(&url, era, "echo__echo", clients, calls).await;
            // The call history's last batch is written within its 250 ms wait.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let after = Cpu::now(&gateways, balancer.as_ref());
            tokio::time::sleep(STATISTICS_LAG).await;
            let written = Written::now(&database).await;
            let per_call = |cpu: Duration| cpu / measured.calls.max(1) as u32;
            let per_thousand = |count: i64| count * 1000 / measured.calls.max(1) as i64;
            rows.push(Row {
                target: match replicas {
                    0 => "1 gateway, direct".to_owned(),
                    1 => "nginx → 1 gateway".to_owned(),
                    n => format!("nginx → {n} gateways"),
                },
                era,
                gateways_cpu: per_call(after.gateways - before.gateways),
                nginx_cpu: after.nginx.zip(before.nginx).map(|(a, b)| per_call(a - b)),
                postgres_cpu: per_call(after.postgres.saturating_sub(before.postgres)),
                commits: per_thousand(written.commits - written_before.commits),
                rows: per_thousand(written.rows - written_before.rows),
                measured,
            });
            written_before = written;
        }
    }
    println!("## 7. Replicas on one PostgreSQL behind nginx ({clients} clients)\n");
    println!(
        "| target | era | calls/s | × direct | p50 ms | p99 ms | gateways' CPU µs/call | nginx CPU µs/call | PostgreSQL CPU µs/call | DB commits / 1,000 calls | DB rows written / 1,000 calls | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let direct = rows
            .iter()
            .find(|other| other.era == row.era && other.nginx_cpu.is_none())
            .expect("a direct row for each era");
        println!(
            "| {} | {} | {:.0} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.target,
            row.era.label(),
            row.measured.per_second(),
            row.measured.per_second() / direct.measured.per_second(),
            ms(row.measured.percentile(0.5)),
            ms(row.measured.percentile(0.99)),
            micros(Some(row.gateways_cpu)),
            micros(row.nginx_cpu),
            micros(Some(row.postgres_cpu)),
            row.commits,
            row.rows,
            row.measured.errors,
        );
    }
    println!();
}

/// A new database on the server at `server` (a URL ending in `/postgres`); its URL.
async fn fresh_database(server: &str, n: usize) -> String {
    let name = format!("mcps_bench_{}_{n}", std::process::id());
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the benchmark's database");
    let base = server
        .strip_suffix("/postgres")
        .expect("the server's URL ends in /postgres");
    format!("{base}/{name}")
}

/// nginx, one worker, round robin over `gateways`; its `/mcp` URL.
fn balance(nginx: &str, gateways: &[(Process, String)]) -> (Process, String) {
    let dir = tempfile::tempdir().expect("a directory for nginx");
    let port = free_port();
    let servers: String = gateways
        .iter()
        .map(|(_, url)| {
            let address = url.trim_start_matches("http://").trim_end_matches("/mcp");
            format!("server {address};\n")
        })
        .collect();
    let root = std::fs::read_to_string("/proc/self/status")
        .is_ok_and(|status| status.lines().any(|line| line.starts_with("Uid:\t0\t")));
    let config = format!(
        "{}worker_processes 1;
pid nginx.pid;
error_log error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path body;
    proxy_temp_path proxy;
    fastcgi_temp_path fastcgi;
    uwsgi_temp_path uwsgi;
    scgi_temp_path scgi;
    upstream gateways {{ {servers} keepalive 128; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_buffering off;
        }}
    }}
}}
",
        if root { "user root;\n" } else { "" }
    );
    std::fs::write(dir.path().join("nginx.conf"), config).expect("write nginx.conf");
    let mut command = Command::new(nginx);
    command
        .arg("-p")
        .arg(dir.path())
        .args(["-c", "nginx.conf", "-g", "daemon off;"]);
    let mut process = start_listening(command, port);
    process._config = Some(dir);
    (process, format!("http://127.0.0.1:{port}/mcp"))
}

/// How long after its last commit a pooled connection's writes may take to show in
/// `pg_stat_database`: a PostgreSQL backend that stays connected and flushed its statistics
/// less than a second before holds them until it has been idle 10 s (`PGSTAT_IDLE_INTERVAL`).
/// Read 1.5 s after the load, the column of rows written showed a third to all of them.
const STATISTICS_LAG: Duration = Duration::from_secs(11);

/// CPU used so far.
struct Cpu {
    gateways: Duration,
    /// nginx's master and worker, when there is one.
    nginx: Option<Duration>,
    postgres: Duration,
}

impl Cpu {
    fn now(gateways: &[(Process, String)], balancer: Option<&(Process, String)>) -> Self {
        Self {
            gateways: gateways.iter().map(|(process, _)| process.cpu()).sum(),
            nginx: balancer.map(|(process, _)| {
                procs::cpu_of(process.pid()) + procs::children_cpu(process.pid())
            }),
            postgres: named("postgres"),
        }
    }
}

/// What the database has written so far, as `pg_stat_database` shows it.
struct Written {
    commits: i64,
    rows: i64,
}

impl Written {
    async fn now(database: &str) -> Self {
        let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
            .await
            .expect("connect to the benchmark's database");
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
                FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .expect("read pg_stat_database");
        Self {
            commits: row.get(0),
            rows: row.get(1),
        }
    }
}

/// CPU time of every process named `name` (PostgreSQL's server and its backends).
fn named(name: &str) -> Duration {
    procs::processes()
        .filter(|(_, stat)| stat.contains(&format!("({name})")))
        .map(|(pid, _)| procs::cpu_of(pid))
        .sum()
}
