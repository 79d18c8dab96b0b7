//! The real `warren` binary, run as a child process with its log read line by line, so
//! a test can wait for what the broker says it did instead of sleeping.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::WAIT;

/// A running broker process; killed when dropped.
pub struct Binary {
    pub child: Child,
    /// Where it accepts AMQP connections.
    pub addr: SocketAddr,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far, for failure messages.
    seen: Vec<String>,
    /// Where its management API listens.
    management: Option<SocketAddr>,
}

/// The `address=` of a log line.
fn address_in(line: &str) -> SocketAddr {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("address="))
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

impl Binary {
    /// Starts `warren --config CONFIG` with its data in `data_dir`, on free ports, and
    /// waits until it says where it listens.
    pub async fn start(config: &Path, data_dir: &Path) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
            .arg("--config")
            .arg(config)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .current_dir(data_dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the warren binary");
        let (tx, lines) = mpsc::unbounded_channel();
        for pipe in [
            child.stdout.take().map(|p| Box::pin(p) as Pin),
            child.stderr.take().map(|p| Box::pin(p) as Pin),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if tx.send(strip_ansi(&line)).is_err() {
                        return;
                    }
                }
            });
        }
        let mut binary = Binary {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            management: None,
            lines,
            seen: Vec::new(),
        };
        let line = binary
            .wait_for_log("listening for AMQP 0-9-1 connections")
            .await;
        binary.addr = address_in(&line);
        // Logged before the AMQP listener.
        binary.management = binary
            .seen
            .iter()
            .find(|l| l.contains("management API and metrics on HTTP"))
            .map(|l| address_in(l));
        binary
    }

    /// `amqp://guest:guest@ADDR/%2f`.
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    /// Waits (at most [`WAIT`]) for a log line containing `needle`, and returns it.
    pub async fn wait_for_log(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "the broker did not log {needle:?}; it logged:\n{}",
                self.seen.join("\n")
            ),
        }
    }

    /// Where its management API listens.
    pub fn management_addr(&self) -> SocketAddr {
        self.management
            .expect("the broker serves the management API")
    }

    /// Its process id.
    pub fn pid(&self) -> nix::unistd::Pid {
        let pid = self.child.id().expect("the broker is running");
        nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid fits i32"))
    }
}

type Pin = std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// The line without terminal colour codes.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
