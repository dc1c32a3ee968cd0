//! `mcps`: the MCPS.ONE gateway command line.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use mcps::{app::App, config::Config};

/// jemalloc, not the system allocator. glibc's keeps the pages that a burst of sessions freed:
/// measured, 5,000 sessions opened and expired left 275 MB resident with 1.6 MB in use, and
/// each such cycle left more (394 MB after four). jemalloc, with its background thread
/// purging freed pages (see [`return_freed_memory`]), came back to the same ~80 MB after each
/// cycle at a similar peak. (mimalloc came back too, but from twice the peak and higher each
/// time.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Starts jemalloc's background thread, which returns freed pages to the system a few seconds
/// after they are freed, also while the gateway idles (without it, pages are purged only when
/// something allocates). Called after the reaper's fork, which needs a single thread.
fn return_freed_memory() -> Result<(), tikv_jemalloc_ctl::Error> {
    tikv_jemalloc_ctl::max_background_threads::write(1)?;
    tikv_jemalloc_ctl::background_thread::write(true)
}

#[derive(Debug, Parser)]
#[command(
    name = "mcps",
    version,
    about = "One MCP endpoint in front of many MCP servers"
)]
struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        env = "MCPS_CONFIG",
        default_value = "proxy.yaml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over streamable HTTP at /mcp, plus /api/v1.
    Serve {
        /// Overrides server.listen, e.g. 127.0.0.1:9000 (port 0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Serve MCP over stdin/stdout, for a client that launches the gateway (Claude Desktop).
    Stdio {
        /// Serve only this virtual server (`virtual_servers` in the config).
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
    },
    /// Validate the config, then show every upstream's state and the catalog (the running
    /// gateway's, else from upstreams started here); exits 1 on any problem.
    Check {
        #[command(flatten)]
        place: Place,
    },
    /// List the aggregated tools (the running gateway's, else from upstreams started here).
    Tools {
        /// Print the full tool definitions as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Ask a running gateway for its health (a container's health check): exits 0 when it
    /// answers, whatever its upstreams' state, 1 when it does not.
    Health {
        /// The gateway's base URL; by default the config's `server.listen` (an unspecified
        /// address means this machine).
        #[arg(long)]
        url: Option<String>,
    },
    /// Read the servers of a Claude Desktop, Cursor or VS Code config as upstream entries:
    /// printed as a proxy.yaml, or with --write added to the config file (-c).
    Import {
        /// The client's file, e.g. claude_desktop_config.json, ~/.cursor/mcp.json or
        /// .vscode/mcp.json.
        file: PathBuf,
        /// Add the entries to the config file, keeping its comments; it is checked first.
        #[arg(long)]
        write: bool,
    },
    /// The registry at `database.url`: its schema, and copying it into another database.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
    /// Serve the demo MCP server (greet, add, echo) over stdin/stdout: the shipped config's
    /// `hello` upstream.
    Hello,
    /// Call one tool through the gateway and print its result as JSON: through the running
    /// gateway (it shows in its call history), else through upstreams started here.
    Call {
        /// The exposed tool name, e.g. time__get_current_time.
        name: String,
        /// The arguments, as a JSON object.
        #[arg(long, default_value = "{}")]
        args: String,
        #[command(flatten)]
        place: Place,
    },
}

/// Where `check`, `tools` and `call` find the catalog.
#[derive(Debug, clap::Args)]
struct Place {
    /// Start the config's upstreams here even when a gateway runs on its address (one with
    /// `auth.enabled` takes the API key in MCPS_API_KEY).
    #[arg(long)]
    local: bool,
}

#[derive(Debug, Subcommand)]
enum DbAction {
    /// Show where the registry is, and its applied and pending migrations. Changes nothing.
    Status,
    /// Apply the pending migrations (every start of the gateway does it too).
    Migrate,
    /// Copy every row of the registry into the database at URL (an SQLite registry into
    /// PostgreSQL): ids are kept, secrets are sealed again with the target's key
    /// (MCPS_COPY_SECRET_KEY, else database.secret_key), and each table's rows are counted on
    /// both sides. Copying again is harmless; a target with rows of its own is refused.
    Copy {
        /// The target: a libpq URL (postgresql://user:pass@host/db) or an SQLite path.
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Import { file, write } = &cli.command {
        // Needs no valid config of its own: it may be making the first one.
        return import(file, write.then_some(cli.config.as_path()));
    }
    if let Command::Hello = &cli.command {
        // A server of its own, launched by the gateway: no config, and stdout is MCP's.
        return hello();
    }
    if let Command::Health { url } = &cli.command {
        return health(url.as_deref(), &cli.config);
    }
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("mcps: {}: {error}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    // First, while this process has one thread (see the reaper's docs): every command from
    // here on may start upstreams.
    let reaper = mcps::upstream::reaper::start();
    let purging = return_freed_memory();
    let _log_guard = match mcps::logging::init(&config.logging, &config.base_dir) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("mcps: {}: {error}", cli.config.display());
            return ExitCode::from(2);
        }
    };
    if let Err(error) = purging {
        tracing::debug!(%error, "jemalloc's background thread did not start; freed memory is returned less promptly");
    }
    if let Err(error) = reaper {
        tracing::warn!(%error, "cannot start the reaper: if the gateway is killed, processes its upstreams started may live on");
    }
    // Before any upstream starts, so every orphaned grandchild comes to us to be reaped.
    mcps::upstream::adopt_orphans();
    mcps::upstream::raise_open_file_limit();
    let runtime = match runtime(config.server.threads) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcps: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli.command, config, &cli.config));
    // A write to a stdout nobody reads may still sit on a blocking thread; it must not keep
    // the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mcps: {}", mcps::error::with_causes(&*error));
            ExitCode::FAILURE
        }
    }
}

/// The async runtime: one thread, or a pool (`threads`, 0 = one per core).
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if threads > 1 {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()
}

async fn run(command: Command, config: Config, path: &Path) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { listen } => {
            let listen = match listen {
                Some(listen) => listen,
                None => config.server.listen_addr()?,
            };
            App::new(config)
                .reload_from(path)
                .serve_http(listen)
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Db { action } => db(action, &config).await,
        Command::Stdio { server } => {
            if let Some(name) = &server
                && !config.virtual_servers.contains_key(name)
            {
                let known: Vec<&str> = config.virtual_servers.keys().map(String::as_str).collect();
                anyhow::bail!(
                    "no virtual server named {name:?} in {} (it has: {})",
                    path.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            }
            App::new(config)
                .reload_from(path)
                .serve_stdio(server.map(Arc::from))
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { place } => mcps::cli::check(config, path, place.local).await,
        Command::Tools { json, place } => mcps::cli::tools(config, json, place.local).await,
        Command::Call { name, args, place } => {
            mcps::cli::call(config, &name, &args, place.local).await
        }
        Command::Import { .. } | Command::Health { .. } | Command::Hello => {
            unreachable!("handled before the config is loaded")
        }
    }
}

/// `mcps hello`: the demo server, on a runtime of one thread.
fn hello() -> ExitCode {
    let served = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(mcps::hello::serve_stdio()));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcps hello: {}", mcps::error::with_causes(&*error));
            ExitCode::FAILURE
        }
    }
}

/// `mcps health`: whether the gateway at `url` (or at the config's listen address) answers.
fn health(url: Option<&str>, config: &Path) -> ExitCode {
    let base = match url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => match Config::load(config)
            .map_err(anyhow::Error::from)
            .and_then(|config| mcps::cli::base_url(&config))
        {
            Ok(base) => base,
            Err(error) => {
                eprintln!("mcps health: {}: {error}", config.display());
                return ExitCode::from(2);
            }
        },
    };
    // Without a URL, the gateway is this machine's.
    let here = url.is_none();
    let url = format!("{base}/api/v1/system/health");
    // reqwest is built without a TLS provider of its own (an https:// URL needs one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let asked = async {
        let client = mcps::cli::client_for(&base, here)
            .timeout(std::time::Duration::from_secs(5))
            .build()?;
        let response = client.get(&url).send().await?.error_for_status()?;
        response.json::<serde_json::Value>().await
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime.map(|runtime| runtime.block_on(asked)) {
        Ok(Ok(health)) => {
            println!("{}", health["status"].as_str().unwrap_or("unknown"));
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => {
            eprintln!("mcps health: {url}: {}", mcps::error::with_causes(&error));
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("mcps health: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `mcps import`: prints the entries as a proxy.yaml, or adds them to `into`.
fn import(file: &Path, into: Option<&Path>) -> ExitCode {
    let outcome = std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))
        .and_then(|text| mcps::config::import::import(&text));
    let imported = match outcome {
        Ok(imported) => imported,
        Err(error) => {
            eprintln!("mcps import: {error}");
            return ExitCode::from(2);
        }
    };
    let written = match into {
        None => mcps::config::import::to_yaml(&imported.upstreams).map(|yaml| print!("{yaml}")),
        Some(config) => mcps::config::import::add_to_file(config, &imported.upstreams)
            .map(|added| eprintln!("added to {}: {}", config.display(), added.join(", "))),
    };
    for note in &imported.notes {
        eprintln!("note: {note}");
    }
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcps import: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn db(action: DbAction, config: &Config) -> anyhow::Result<ExitCode> {
    use mcps::{config::DatabaseConfig, registry::Registry};
    let location = config
        .database
        .location(&config.base_dir)
        .map_err(|error| anyhow::anyhow!("database.url: {error}"))?;
    let place = Registry::describe(&location);
    let schema = |applied: Option<usize>, latest: usize| match applied {
        None => format!("{place}: does not exist yet; the gateway's first start creates it"),
        Some(applied) if applied < latest => format!(
            "{place}: {applied} of {latest} migrations applied, {} pending (`mcps db migrate`, or the gateway's next start, applies them)",
            latest - applied
        ),
        Some(applied) if applied > latest => format!(
            "{place}: {applied} migrations applied, more than this gateway's {latest}: a newer gateway migrated it"
        ),
        Some(applied) => format!("{place}: {applied} of {latest} migrations applied; none pending"),
    };
    match action {
        DbAction::Status => {
            let (applied, latest) = Registry::schema(&location).await?;
            println!("{}", schema(applied, latest));
        }
        DbAction::Migrate => {
            let (before, _) = Registry::schema(&location).await?;
            Registry::open(&location, &config.database.secret_key)
                .await?
                .close()
                .await?;
            let (applied, latest) = Registry::schema(&location).await?;
            let now = applied.unwrap_or(0) - before.unwrap_or(0);
            println!("{} ({now} applied now)", schema(applied, latest));
        }
        DbAction::Copy { to } => {
            let secret_key = std::env::var("MCPS_COPY_SECRET_KEY")
                .ok()
                .filter(|key| !key.is_empty())
                .unwrap_or_else(|| config.database.secret_key.clone());
            let target_config = DatabaseConfig {
                url: to,
                secret_key,
                ..DatabaseConfig::default()
            };
            let target = target_config
                .location(&config.base_dir)
                .map_err(|error| anyhow::anyhow!("--to: {error}"))?;
            if target == location {
                anyhow::bail!("--to names the registry itself ({place})");
            }
            let source = Registry::open(&location, &config.database.secret_key).await?;
            let into = Registry::open(&target, &target_config.secret_key)
                .await
                .context("the target (set its sealing key in MCPS_COPY_SECRET_KEY)")?;
            let copied = source.copy_to(&into).await?;
            println!("copied {place} into {}:", into.place());
            for (table, rows) in copied.tables {
                println!("  {table}: {rows} rows");
            }
            source.close().await?;
            into.close().await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
