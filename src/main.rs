//! `warren`: the broker binary. Loads the configuration, starts the server, stops it
//! gracefully on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod reload;

use clap::{Parser, Subcommand};
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
    /// `management.listen` (port 0 picks a free port).
    #[arg(long)]
    management_listen: Option<SocketAddr>,
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
}

const DEFAULT_CONFIG: &str = "broker.toml";

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
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
        None => serve(args),
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
