//! `warren`: the broker binary. Loads the configuration, starts the server, stops it
//! gracefully on SIGINT or SIGTERM. Its subcommands check and reload the configuration
//! and inspect or operate a running broker through its management API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod api_client;
mod definitions;
mod inspect;
mod operate;
mod plan;
mod reload;
mod table;

use api_client::ApiClient;
use clap::{Parser, Subcommand};
use inspect::Listing;
use operate::Deletable;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;
use warren_server::Server;
use warren_server::auth::hash_password;
use warren_server::config::Config;

/// An AMQP 0-9-1 message broker.
#[derive(Parser, Clone)]
#[command(version, about)]
struct Args {
    /// Configuration file. Default: ./broker.toml if present, else the built-in default.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Listen on this address instead of the file's `server.listen`.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Serve the management API and metrics on this address instead of the file's
    /// `management.listen` (port 0 picks a free port). For commands that talk to a
    /// running broker: where its management API is.
    #[arg(long, global = true)]
    management_listen: Option<SocketAddr>,
    /// For commands that talk to a running broker: the broker user to log in as.
    #[arg(
        long,
        short,
        global = true,
        env = "WARREN_USER",
        default_value = "guest"
    )]
    user: String,
    /// The user's password.
    #[arg(
        long,
        short,
        global = true,
        env = "WARREN_PASSWORD",
        default_value = "guest",
        hide_default_value = true,
        hide_env_values = true
    )]
    password: String,
    /// For commands that name a queue or exchange: its vhost (for `list`: only this
    /// vhost).
    #[arg(long, global = true)]
    vhost: Option<String>,
    /// Keep durable state here instead of the file's `server.data_dir` (for `reload`:
    /// where the running broker keeps it).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Runtime worker threads (default: one per core; 0 runs everything on one thread).
    #[arg(long)]
    workers: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Clone)]
enum Command {
    /// Print a password hash for a `[[users]]` entry's `password_hash`.
    HashPassword {
        /// The password to hash.
        password: String,
    },
    /// Validate a configuration file without starting the broker.
    Check {
        /// The file to check (default: the --config file or ./broker.toml).
        file: Option<PathBuf>,
    },
    /// Check the configuration file, then have the running broker reload it (SIGHUP to
    /// the pid in its data directory). Users, permissions, vhosts, limits, policies and
    /// declared topology change without a restart; a bad file is refused whole.
    Reload,
    /// List queues (depth, rates, oldest message), exchanges, bindings, connections,
    /// channels or consumers of the running broker.
    List {
        /// What to list.
        #[arg(value_enum)]
        what: Listing,
    },
    /// Show the settings in force on a queue and where each came from: which policy,
    /// or the queue's own arguments.
    Policies {
        /// The queue.
        queue: String,
    },
    /// Show the first ready messages of a queue without consuming them or marking
    /// them redelivered.
    Peek {
        /// The queue.
        queue: String,
        /// How many messages.
        #[arg(default_value_t = 10)]
        count: usize,
    },
    /// Remove every ready message from a queue.
    Purge {
        /// The queue.
        queue: String,
    },
    /// Delete a queue (with its messages) or an exchange (with its bindings).
    Delete {
        /// What to delete.
        #[arg(value_enum)]
        what: Deletable,
        /// Its name.
        name: String,
        /// Only if the queue holds no ready messages.
        #[arg(long)]
        if_empty: bool,
        /// Only if the queue has no consumers, or the exchange no bindings.
        #[arg(long)]
        if_unused: bool,
    },
    /// Show what applying the configuration file would change on the running broker:
    /// what it would add, change and remove. Only what the broker's current file
    /// declared is removed when the new one drops it; what clients declared stays.
    Plan,
    /// Apply the configuration file to the running broker, removals included: reload
    /// it (as `warren reload`), then delete the exchanges, queues and bindings the file
    /// no longer declares. A queue that holds messages is deleted only with --force.
    Apply {
        /// Also delete queues that hold messages (they are lost).
        #[arg(long)]
        force: bool,
    },
    /// Write the running broker's users, vhosts, permissions, policies, exchanges,
    /// queues and bindings as broker.toml.
    Export {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Convert a RabbitMQ definitions export (JSON, from `rabbitmqctl
    /// export_definitions` or the management UI) into broker.toml. What warren cannot
    /// express is left out with a warning.
    ImportDefinitions {
        /// The RabbitMQ definitions file.
        file: PathBuf,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Move dead-lettered messages from a dead-letter queue back to the queue each
    /// died in (from its x-death headers), as SQS's DLQ redrive. Messages that never
    /// died, or whose queue is gone, stay.
    Redrive {
        /// The dead-letter queue.
        queue: String,
    },
}

impl Command {
    /// Whether it talks to a running broker's management API.
    fn is_remote(&self) -> bool {
        matches!(
            self,
            Command::List { .. }
                | Command::Policies { .. }
                | Command::Peek { .. }
                | Command::Purge { .. }
                | Command::Delete { .. }
                | Command::Redrive { .. }
                | Command::Export { .. }
                | Command::Plan
                | Command::Apply { .. }
        )
    }
}

const DEFAULT_CONFIG: &str = "broker.toml";

fn main() -> ExitCode {
    let args = Args::parse();
    // Commands print their results on stdout; logs stay out of the way.
    let quiet = args.command.as_ref().is_some_and(Command::is_remote);
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(if quiet { "warn" } else { "info" })),
        )
        .with_writer(std::io::stderr)
        .init();
    match args.command {
        Some(Command::HashPassword { ref password }) => match hash_password(password) {
            Ok(hash) => {
                println!("{hash}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Check { ref file }) => {
            let path = file
                .clone()
                .or(args.config.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
            match Config::load(&path) {
                Ok(_) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Reload) => {
            let outcome = match (&args.config, Path::new(DEFAULT_CONFIG).exists()) {
                (None, false) => Err(format!(
                    "no {DEFAULT_CONFIG} here and no --config: nothing to reload"
                )),
                _ => load_config(&args).and_then(|config| reload::signal_broker(&config)),
            };
            match outcome {
                Ok(pid) => {
                    println!("configuration checked; broker (pid {pid}) is reloading it");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::ImportDefinitions {
            ref file,
            ref output,
        }) => {
            let converted = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))
                .and_then(|text| {
                    serde_json::from_str(&text)
                        .map_err(|e| format!("{} is not JSON: {e}", file.display()))
                })
                .and_then(|definitions| {
                    let origin = format!("RabbitMQ definitions in {}", file.display());
                    write_broker_toml(&definitions, &origin, output.as_deref())
                });
            match converted {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => serve(args),
        Some(ref command) => match remote(&args, command) {
            Ok(out) => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Runs a command against the running broker's management API, found at
/// `--management-listen` or the configuration's `[management] listen`.
fn remote(args: &Args, command: &Command) -> Result<String, String> {
    let addr = match args.management_listen {
        Some(addr) => addr,
        None => load_config(args)?.management.ok_or(
            "the configuration turns the management API off; \
             give its address with --management-listen",
        )?,
    };
    let api = ApiClient::new(addr, &args.user, &args.password);
    let vhost = args.vhost.as_deref().unwrap_or("/");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        match command {
            Command::List { what } => inspect::list(&api, *what, args.vhost.as_deref()).await,
            Command::Policies { queue } => inspect::policies(&api, vhost, queue).await,
            Command::Peek { queue, count } => inspect::peek(&api, vhost, queue, *count).await,
            Command::Purge { queue } => operate::purge(&api, vhost, queue).await,
            Command::Delete {
                what,
                name,
                if_empty,
                if_unused,
            } => operate::delete(&api, vhost, *what, name, *if_empty, *if_unused).await,
            Command::Redrive { queue } => operate::redrive(&api, vhost, queue).await,
            Command::Plan => {
                let desired = load_config(args)?;
                let (live, depths) = plan::live(&api).await?;
                Ok(plan::plan(&desired, &live, &depths).render())
            }
            Command::Apply { force } => apply(args, &api, *force).await,
            Command::Export { output } => {
                let definitions = api.get("/api/definitions").await?;
                let origin = format!("the broker at {addr}");
                write_broker_toml(&definitions, &origin, output.as_deref())
            }
            _ => Err("not a command for a running broker".into()),
        }
    })
}

/// `warren apply`: the plan, then the reload, then the removals the reload does not
/// make.
async fn apply(args: &Args, api: &ApiClient, force: bool) -> Result<String, String> {
    if args.config.is_none() && !Path::new(DEFAULT_CONFIG).exists() {
        return Err(format!(
            "no {DEFAULT_CONFIG} here and no --config: nothing to apply"
        ));
    }
    let desired = load_config(args)?;
    let (live, depths) = plan::live(api).await?;
    let planned = plan::plan(&desired, &live, &depths);
    let mut out = planned.render();
    if planned.is_empty() {
        return Ok(out);
    }
    let forced = planned.needs_force();
    if !forced.is_empty() && !force {
        let names: Vec<&str> = forced.iter().map(|r| r.what.as_str()).collect();
        return Err(format!(
            "{out}\nnothing applied: removing {} loses messages; run again with --force",
            names.join(", ")
        ));
    }
    let pid = reload::signal_broker(&desired)?;
    // The reload runs in the broker: wait until what it adds and changes is in force.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (live, depths) = plan::live(api).await?;
        let now = plan::plan(&desired, &live, &depths);
        if now.add.is_empty() && now.change.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "{out}\nthe broker (pid {pid}) has not applied the file after 10 s: it reloads \
                 the file it was started with, is that this one? See its log"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let failed = plan::remove(api, &planned).await;
    if !failed.is_empty() {
        return Err(format!("{out}\nnot removed:\n  {}", failed.join("\n  ")));
    }
    out.push_str(&format!("applied (broker pid {pid})\n"));
    Ok(out)
}

/// Converts definitions to broker.toml, checks that it loads, and writes it to
/// `output` (returning a line that says so) or returns it. Warnings go to stderr.
fn write_broker_toml(
    definitions: &serde_json::Value,
    origin: &str,
    output: Option<&Path>,
) -> Result<String, String> {
    let converted = definitions::to_broker_toml(definitions, origin)?;
    for warning in &converted.warnings {
        eprintln!("warning: {warning}");
    }
    let name = output.map_or("the converted broker.toml".into(), |p| {
        p.display().to_string()
    });
    Config::parse(&converted.toml, &name)
        .map_err(|e| format!("the converted file does not load: {e}"))?;
    match output {
        None => Ok(converted.toml),
        Some(path) => {
            std::fs::write(path, &converted.toml)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(format!("wrote {}\n", path.display()))
        }
    }
}

fn load_config(args: &Args) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None if Path::new(DEFAULT_CONFIG).exists() => {
            Config::load(Path::new(DEFAULT_CONFIG)).map_err(|e| e.to_string())?
        }
        None => {
            info!("no {DEFAULT_CONFIG} here; using the built-in default configuration");
            Config::embedded_default()
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(addr) = args.management_listen {
        config.management = Some(addr);
    }
    Ok(config)
}

fn serve(args: Args) -> ExitCode {
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(e) => {
            error!("{e}");
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = match std::env::var("WARREN_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(0) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Without a file (the built-in default) there is nothing to re-read.
    let reloadable = args.config.is_some() || Path::new(DEFAULT_CONFIG).exists();
    let data_dir = config.data_dir.clone();
    let result = runtime.block_on(async {
        let listen = config.listen;
        let server = Server::bind(config)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let _pid_file = reload::PidFile::write(&data_dir)
            .map_err(|e| format!("cannot write the pid file in {}: {e}", data_dir.display()))?;
        if reloadable {
            let reloader = server.reload_handle();
            let args = args.clone();
            tokio::spawn(reload::on_hangup(move || load_config(&args), reloader));
        }
        let shutdown = server.shutdown_handle();
        tokio::spawn(async move {
            wait_for_signal().await;
            info!("shutting down: closing connections");
            shutdown.shutdown();
        });
        server.run().await.map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
