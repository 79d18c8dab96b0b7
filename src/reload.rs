//! Reloading the configuration of a running broker: on SIGHUP the broker re-reads its
//! file; `warren reload` checks the file and sends that SIGHUP, finding the broker by
//! the pid file it keeps in its data directory.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tracing::{error, info, warn};
use warren_server::ReloadHandle;
use warren_server::config::Config;

/// The pid file's name in the data directory.
const PID_FILE: &str = "warren.pid";

/// The running broker's pid file; removed when dropped (the broker stopping).
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's pid into `data_dir`.
    pub fn write(data_dir: &Path) -> std::io::Result<PidFile> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(PID_FILE);
        std::fs::write(&path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Re-reads the configuration on every SIGHUP (`load` reads the file and applies the
/// command line's overrides). A file that does not load is refused whole: the error is
/// logged and the running configuration stays.
pub async fn on_hangup(load: impl Fn() -> Result<Config, String>, reload: ReloadHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; reloading is off");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        info!("SIGHUP: reloading the configuration");
        let config = match load() {
            Ok(config) => config,
            Err(e) => {
                error!("configuration not reloaded, the running one stays: {e}");
                continue;
            }
        };
        let reloaded = reload.reload(config).await;
        if reloaded.needs_restart {
            warn!(
                "the file changes listen addresses, the data directory, fsync or the disk \
                 limit: those take effect at the next restart"
            );
        }
        info!(
            vhosts_added = reloaded.vhosts_added.len(),
            policies_changed = reloaded.policies_changed.len(),
            topology_added = reloaded.topology.added.len(),
            topology_differing = reloaded.topology.differing.len(),
            "configuration reloaded"
        );
    }
}

/// `warren reload`: checks `config` (already loaded, so valid) and signals the broker
/// whose pid file is in its data directory.
pub fn signal_broker(config: &Config) -> Result<u32, String> {
    let path = config.data_dir.join(PID_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; is the broker running with this configuration's data_dir?",
            path.display()
        )
    })?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|_| format!("{}: not a process id: {:?}", path.display(), text.trim()))?;
    kill(Pid::from_raw(pid), Signal::SIGHUP).map_err(|e| {
        format!(
            "cannot signal the broker (pid {pid} from {}): {e}",
            path.display()
        )
    })?;
    Ok(pid.unsigned_abs())
}
