//! The broker's configuration file, `broker.toml`.
//!
//! Loading is two steps: serde reads the file into private `Raw*` structs that keep each
//! value's byte span, then validation checks ranges and cross-references and builds the
//! public [`Config`]. Keeping the spans until validation is what lets every error name
//! file, line, column and key (see [`ConfigError`]). Unknown keys are errors: a misspelt
//! `fram_max` silently ignored would be worse than a refusal to start.
//!
//! Invariants of a [`Config`]: user and vhost names are unique and non-empty, every
//! permission names a defined user and vhost, each (user, vhost) has at most one permission
//! entry, and every limit is within the range documented on [`Limits`]. Exchanges,
//! queues, bindings and policies name defined vhosts; exchange, queue and policy names
//! are unique in their vhost; exchange and queue arguments are ones their declare
//! accepts; every binding joins exchanges and queues that exist once the file is
//! applied; every policy sets something, within the range of the matching queue
//! argument.
//!
//! Layout: this file holds the [`Config`], the server settings, users, vhosts and
//! permissions; `topology.rs` the `[[exchanges]]`, `[[queues]]` and `[[bindings]]`;
//! `policies.rs` the `[[policies]]`; `arguments.rs` turns TOML tables into field tables.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::auth::{PasswordHash, Permissions, ResourcePattern};
pub use crate::config_error::{ConfigError, Location, Problem};
use crate::policy::Policy;

mod arguments;
mod policies;
mod topology;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod topology_tests;

pub use topology::{BindingConfig, BindingDestination, ExchangeConfig, QueueConfig};

/// The configuration used when no file is given: guest/guest from localhost, vhost "/".
const DEFAULT_TOML: &str = include_str!("../default.toml");

/// The vhost of an `[[exchanges]]`, `[[queues]]`, `[[bindings]]` or `[[policies]]`
/// entry that names none.
const DEFAULT_VHOST: &str = "/";

/// Where the management API listens unless configured: RabbitMQ's port, loopback only.
pub const DEFAULT_MANAGEMENT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 15672);

/// The whole broker configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address to accept AMQP connections on (`server.listen`).
    pub listen: SocketAddr,
    /// Where durable state lives (`server.data_dir`).
    pub data_dir: PathBuf,
    /// Sync the message store to disk before confirming a persistent message
    /// (`server.fsync`, on by default). Off, a confirmed message survives the broker
    /// being killed but not a power cut or an operating system crash.
    pub fsync: bool,
    /// Where the management HTTP API and metrics listen (`[management] listen`,
    /// 127.0.0.1:15672 by default); `None` when `enabled = false`.
    pub management: Option<SocketAddr>,
    /// Protocol and resource limits (`[limits]`).
    pub limits: Limits,
    /// Users allowed to log in (`[[users]]`).
    pub users: Vec<UserConfig>,
    /// Virtual hosts (`[[vhosts]]`).
    pub vhosts: Vec<VhostConfig>,
    /// Who may do what where (`[[permissions]]`).
    pub permissions: Vec<PermissionConfig>,
    /// Exchanges declared at start (`[[exchanges]]`).
    pub exchanges: Vec<ExchangeConfig>,
    /// Queues declared at start (`[[queues]]`).
    pub queues: Vec<QueueConfig>,
    /// Bindings declared at start (`[[bindings]]`).
    pub bindings: Vec<BindingConfig>,
    /// Policies applied to matching queues (`[[policies]]`).
    pub policies: Vec<Policy>,
}

/// Limits offered in connection.tune and enforced by the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame in bytes, at least 4096 (the spec's frame-min-size). Default 131072.
    pub frame_max: u32,
    /// Highest channel number, 1..=65535. Default 2047, as RabbitMQ.
    pub channel_max: u16,
    /// Heartbeat interval we propose in seconds; 0 disables. Default 60.
    pub heartbeat: u16,
    /// Largest message body in bytes, 1..=512 MiB. Default 128 MiB, as RabbitMQ.
    pub max_message_size: u32,
    /// Time allowed from TCP accept to connection.open-ok; at least 1 s. Default 10 s.
    pub handshake_timeout: Duration,
    /// Concurrent client connections; 0 = unlimited. Default 0.
    pub max_connections: u32,
    /// Memory the broker's queues may hold before publishers are blocked. Default 40%
    /// of RAM, as RabbitMQ.
    pub memory_high_watermark: Watermark,
    /// Free disk space in bytes on the data directory's file system below which
    /// publishers are blocked. Default 50 MB, as RabbitMQ.
    pub disk_free_limit: u64,
}

/// A memory limit: a share of the machine's RAM or a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    /// Thousandths of total RAM (400 = 0.4).
    PerMille(u16),
    /// Bytes.
    Bytes(u64),
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frame_max: 131_072,
            channel_max: 2047,
            heartbeat: 60,
            max_message_size: 128 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 0,
            memory_high_watermark: Watermark::PerMille(400),
            disk_free_limit: 50_000_000,
        }
    }
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// Decoded `password_hash`.
    pub password_hash: PasswordHash,
    /// May only connect from 127.0.0.0/8 or ::1, like RabbitMQ's `loopback_users`.
    pub loopback_only: bool,
}

/// One `[[vhosts]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostConfig {
    /// Vhost name, as sent in connection.open.
    pub name: String,
}

/// One `[[permissions]]` entry: a user's rights in a vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionConfig {
    /// A user defined in `[[users]]`.
    pub user: String,
    /// A vhost defined in `[[vhosts]]`.
    pub vhost: String,
    /// The compiled configure/write/read patterns; an omitted pattern grants nothing.
    pub permissions: Permissions,
}

impl Config {
    /// Parses and validates configuration text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| crate::config_error::from_syntax(origin, text, &e))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| crate::config_error::from_serde(origin, text, e))?;
        Validator { origin, text }.config(raw)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The built-in configuration from `default.toml`: listen on 127.0.0.1:5672, data in
    /// `./data`, user guest/guest (loopback only) with full permissions on vhost "/".
    pub fn embedded_default() -> Self {
        // The embedded file is ours and a test proves it parses to `builtin_default`; the
        // fallback only exists because this function must not panic.
        Self::parse(DEFAULT_TOML, "default.toml").unwrap_or_else(|_| Self::builtin_default())
    }

    /// `default.toml` built in code.
    fn builtin_default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 5672)),
            data_dir: PathBuf::from("./data"),
            fsync: true,
            management: Some(DEFAULT_MANAGEMENT),
            limits: Limits::default(),
            users: vec![UserConfig {
                name: "guest".to_owned(),
                // The salt written in default.toml's hash; the password is public anyway.
                password_hash: PasswordHash::compute([0x90, 0x8d, 0xc6, 0x0a], b"guest"),
                loopback_only: true,
            }],
            vhosts: vec![VhostConfig {
                name: "/".to_owned(),
            }],
            permissions: vec![PermissionConfig {
                user: "guest".to_owned(),
                vhost: "/".to_owned(),
                permissions: Permissions::full(),
            }],
            exchanges: Vec::new(),
            queues: Vec::new(),
            bindings: Vec::new(),
            policies: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    management: RawManagement,
    #[serde(default)]
    users: Vec<RawUser>,
    #[serde(default)]
    vhosts: Vec<RawVhost>,
    #[serde(default)]
    permissions: Vec<RawPermission>,
    #[serde(default)]
    exchanges: Vec<Spanned<topology::RawExchange>>,
    #[serde(default)]
    queues: Vec<Spanned<topology::RawQueue>>,
    #[serde(default)]
    bindings: Vec<Spanned<topology::RawBinding>>,
    #[serde(default)]
    policies: Vec<Spanned<policies::RawPolicy>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    fsync: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawManagement {
    enabled: Option<bool>,
    listen: Option<Spanned<String>>,
}

/// Integers are read as i64 (TOML's integer type) so range errors can say what is allowed.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    frame_max: Option<Spanned<i64>>,
    channel_max: Option<Spanned<i64>>,
    heartbeat: Option<Spanned<i64>>,
    max_message_size: Option<Spanned<i64>>,
    handshake_timeout: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    memory_high_watermark: Option<Spanned<RawWatermark>>,
    disk_free_limit: Option<Spanned<i64>>,
}

/// A fraction of RAM (a float) or bytes (an integer).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawWatermark {
    Bytes(i64),
    Fraction(f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password_hash: Spanned<String>,
    #[serde(default)]
    loopback_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVhost {
    name: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermission {
    user: Spanned<String>,
    vhost: Spanned<String>,
    configure: Option<Spanned<String>>,
    write: Option<Spanned<String>>,
    read: Option<Spanned<String>>,
}

/// Turns raw values into a [`Config`], locating every error in `text`.
struct Validator<'a> {
    origin: &'a str,
    text: &'a str,
}

impl Validator<'_> {
    fn error<T>(&self, span: usize, key: String, problem: Problem) -> Result<T, ConfigError> {
        Err(ConfigError::Invalid {
            location: self.location(span),
            key,
            problem: Box::new(problem),
        })
    }

    fn location(&self, offset: usize) -> Location {
        Location::at(self.origin, self.text, offset)
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = match raw.server.listen {
            None => SocketAddr::from((Ipv4Addr::LOCALHOST, 5672)),
            Some(s) => match s.get_ref().parse() {
                Ok(addr) => addr,
                Err(_) => {
                    let problem = Problem::InvalidAddress(s.get_ref().clone());
                    return self.error(s.span().start, "server.listen".into(), problem);
                }
            },
        };
        let data_dir = match raw.server.data_dir {
            None => PathBuf::from("./data"),
            Some(s) if s.get_ref().is_empty() => {
                return self.error(s.span().start, "server.data_dir".into(), Problem::Empty);
            }
            Some(s) => PathBuf::from(s.into_inner()),
        };
        let limits = self.limits(&raw.limits)?;
        let users = self.users(raw.users)?;
        let vhosts = self.vhosts(raw.vhosts)?;
        let permissions = self.permissions(raw.permissions, &users, &vhosts)?;
        let vhost_names: Vec<&str> = vhosts.iter().map(|v| v.name.as_str()).collect();
        let exchanges = self.exchanges(raw.exchanges, &vhost_names)?;
        let queues = self.queues(raw.queues, &vhost_names)?;
        let bindings = self.bindings(raw.bindings, &vhost_names, &exchanges, &queues)?;
        let policies = self.policies(raw.policies, &vhost_names)?;
        Ok(Config {
            listen,
            data_dir,
            fsync: raw.server.fsync.unwrap_or(true),
            management: self.management(&raw.management)?,
            limits,
            users,
            vhosts,
            permissions,
            exchanges,
            queues,
            bindings,
            policies,
        })
    }

    fn management(&self, raw: &RawManagement) -> Result<Option<SocketAddr>, ConfigError> {
        if raw.enabled == Some(false) {
            return Ok(None);
        }
        match &raw.listen {
            None => Ok(Some(DEFAULT_MANAGEMENT)),
            Some(s) => match s.get_ref().parse() {
                Ok(addr) => Ok(Some(addr)),
                Err(_) => {
                    let problem = Problem::InvalidAddress(s.get_ref().clone());
                    self.error(s.span().start, "management.listen".into(), problem)
                }
            },
        }
    }

    fn limits(&self, raw: &RawLimits) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let u32_max = i64::from(u32::MAX);
        // The spec's frame-min-size: every peer must accept frames this large.
        let frame_min = 4096;
        // Bodies are held in memory whole; RabbitMQ caps max_message_size at 512 MiB too.
        let body_max = 512 * 1024 * 1024;
        let timeout = d.handshake_timeout.as_secs();
        Ok(Limits {
            frame_max: self.int(&raw.frame_max, "frame_max", frame_min, u32_max, d.frame_max)?,
            channel_max: self.int(&raw.channel_max, "channel_max", 1, 65535, d.channel_max)?,
            heartbeat: self.int(&raw.heartbeat, "heartbeat", 0, 65535, d.heartbeat)?,
            max_message_size: self.int(
                &raw.max_message_size,
                "max_message_size",
                1,
                body_max,
                d.max_message_size,
            )?,
            handshake_timeout: Duration::from_secs(self.int(
                &raw.handshake_timeout,
                "handshake_timeout",
                1,
                u32_max,
                timeout,
            )?),
            max_connections: self.int(
                &raw.max_connections,
                "max_connections",
                0,
                u32_max,
                d.max_connections,
            )?,
            memory_high_watermark: self.watermark(&raw.memory_high_watermark)?,
            disk_free_limit: self.int(
                &raw.disk_free_limit,
                "disk_free_limit",
                0,
                i64::MAX,
                d.disk_free_limit,
            )?,
        })
    }

    /// `limits.memory_high_watermark`: a fraction of RAM in (0, 1] or bytes (>= 1).
    fn watermark(&self, value: &Option<Spanned<RawWatermark>>) -> Result<Watermark, ConfigError> {
        let Some(value) = value else {
            return Ok(Limits::default().memory_high_watermark);
        };
        let watermark = match *value.get_ref() {
            RawWatermark::Bytes(n) if n >= 1 => u64::try_from(n).ok().map(Watermark::Bytes),
            RawWatermark::Fraction(f) if f > 0.0 && f <= 1.0 => {
                Some(Watermark::PerMille((f * 1000.0).round().max(1.0) as u16))
            }
            _ => None,
        };
        match watermark {
            Some(w) => Ok(w),
            None => self.error(
                value.span().start,
                "limits.memory_high_watermark".into(),
                Problem::Type(
                    "expected a fraction of RAM above 0 and at most 1.0 (like 0.4), or a \
                     number of bytes of at least 1"
                        .into(),
                ),
            ),
        }
    }

    /// A `[limits]` integer within `min..=max`, or `default` when absent.
    fn int<T: TryFrom<i64>>(
        &self,
        value: &Option<Spanned<i64>>,
        name: &str,
        min: i64,
        max: i64,
        default: T,
    ) -> Result<T, ConfigError> {
        let key = || format!("limits.{name}");
        Ok(self
            .ranged(value.as_ref(), key, min, max)?
            .unwrap_or(default))
    }

    /// An optional integer within `min..=max`; `key` names it in an error.
    fn ranged<T: TryFrom<i64>>(
        &self,
        value: Option<&Spanned<i64>>,
        key: impl FnOnce() -> String,
        min: i64,
        max: i64,
    ) -> Result<Option<T>, ConfigError> {
        let Some(value) = value else {
            return Ok(None);
        };
        let got = *value.get_ref();
        let problem = if got < min {
            Problem::TooSmall { min, got }
        } else if got > max {
            Problem::TooLarge { max, got }
        } else if let Ok(v) = T::try_from(got) {
            return Ok(Some(v));
        } else {
            // Only reachable if a caller's bounds exceed T's range.
            Problem::TooLarge { max, got }
        };
        self.error(value.span().start, key(), problem)
    }

    /// A name that must be non-empty and unique among `seen` (name -> offset of first use).
    fn unique_name(
        &self,
        name: Spanned<String>,
        key: String,
        kind: &'static str,
        seen: &mut HashMap<String, usize>,
    ) -> Result<String, ConfigError> {
        let at = name.span().start;
        let name = name.into_inner();
        if name.is_empty() {
            return self.error(at, key, Problem::Empty);
        }
        if let Some(&first) = seen.get(&name) {
            let first = self.location(first).line_column();
            return self.error(at, key, Problem::Duplicate { kind, name, first });
        }
        seen.insert(name.clone(), at);
        Ok(name)
    }

    /// A name that must be non-empty and unique in its vhost among `seen` ((vhost, name)
    /// -> offset of first use).
    fn unique_in_vhost(
        &self,
        name: Spanned<String>,
        vhost: &str,
        key: String,
        kind: &'static str,
        seen: &mut HashMap<(String, String), usize>,
    ) -> Result<String, ConfigError> {
        let at = name.span().start;
        let name = name.into_inner();
        if name.is_empty() {
            return self.error(at, key, Problem::Empty);
        }
        let id = (vhost.to_owned(), name);
        if let Some(&first) = seen.get(&id) {
            let first = self.location(first).line_column();
            let name = id.1;
            return self.error(at, key, Problem::Duplicate { kind, name, first });
        }
        seen.insert(id.clone(), at);
        Ok(id.1)
    }

    /// The vhost of an exchange, queue, binding or policy: the one it names or, when it
    /// names none, "/"; either must be defined. `entry` is where the entry starts, the
    /// place to report an undefined default.
    fn entry_vhost(
        &self,
        vhost: Option<Spanned<String>>,
        entry: usize,
        key: String,
        vhosts: &[&str],
    ) -> Result<String, ConfigError> {
        match vhost {
            Some(name) => self.reference(name, key, "vhost", vhosts),
            None if vhosts.contains(&DEFAULT_VHOST) => Ok(DEFAULT_VHOST.to_owned()),
            None => self.unknown(entry, key, "vhost", DEFAULT_VHOST.to_owned(), None, vhosts),
        }
    }

    fn users(&self, raw: Vec<RawUser>) -> Result<Vec<UserConfig>, ConfigError> {
        let mut seen = HashMap::new();
        let mut users = Vec::with_capacity(raw.len());
        for (i, user) in raw.into_iter().enumerate() {
            let name =
                self.unique_name(user.name, format!("users[{i}].name"), "user", &mut seen)?;
            let password_hash = match PasswordHash::parse(user.password_hash.get_ref()) {
                Ok(hash) => hash,
                Err(e) => {
                    let key = format!("users[{i}].password_hash");
                    return self.error(
                        user.password_hash.span().start,
                        key,
                        Problem::PasswordHash(e),
                    );
                }
            };
            users.push(UserConfig {
                name,
                password_hash,
                loopback_only: user.loopback_only,
            });
        }
        Ok(users)
    }

    fn vhosts(&self, raw: Vec<RawVhost>) -> Result<Vec<VhostConfig>, ConfigError> {
        let mut seen = HashMap::new();
        let mut vhosts = Vec::with_capacity(raw.len());
        for (i, vhost) in raw.into_iter().enumerate() {
            let key = format!("vhosts[{i}].name");
            let name = self.unique_name(vhost.name, key, "vhost", &mut seen)?;
            vhosts.push(VhostConfig { name });
        }
        Ok(vhosts)
    }

    fn permissions(
        &self,
        raw: Vec<RawPermission>,
        users: &[UserConfig],
        vhosts: &[VhostConfig],
    ) -> Result<Vec<PermissionConfig>, ConfigError> {
        let user_names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
        let vhost_names: Vec<&str> = vhosts.iter().map(|v| v.name.as_str()).collect();
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut permissions = Vec::with_capacity(raw.len());
        for (i, p) in raw.into_iter().enumerate() {
            let user = self.reference(
                p.user,
                format!("permissions[{i}].user"),
                "user",
                &user_names,
            )?;
            let vhost_at = p.vhost.span().start;
            let key = format!("permissions[{i}].vhost");
            let vhost = self.reference(p.vhost, key.clone(), "vhost", &vhost_names)?;
            if let Some(&first) = seen.get(&(user.clone(), vhost.clone())) {
                let first = self.location(first).line_column();
                let problem = Problem::DuplicatePermission { user, vhost, first };
                return self.error(vhost_at, key, problem);
            }
            seen.insert((user.clone(), vhost.clone()), vhost_at);
            permissions.push(PermissionConfig {
                user,
                vhost,
                permissions: Permissions {
                    configure: self.pattern(p.configure, i, "configure")?,
                    write: self.pattern(p.write, i, "write")?,
                    read: self.pattern(p.read, i, "read")?,
                },
            });
        }
        Ok(permissions)
    }

    /// A name that must be one of `known`.
    fn reference(
        &self,
        name: Spanned<String>,
        key: String,
        kind: &'static str,
        known: &[&str],
    ) -> Result<String, ConfigError> {
        if known.contains(&name.get_ref().as_str()) {
            return Ok(name.into_inner());
        }
        let at = name.span().start;
        self.unknown(at, key, kind, name.into_inner(), None, known)
    }

    /// The error for a reference to `name`, which is not among `known` (in `vhost`, for
    /// things that live in one).
    fn unknown<T>(
        &self,
        at: usize,
        key: String,
        kind: &'static str,
        name: String,
        vhost: Option<&str>,
        known: &[&str],
    ) -> Result<T, ConfigError> {
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        let problem = Problem::UnknownReference {
            kind,
            name,
            vhost: vhost.map(str::to_owned),
            known,
        };
        self.error(at, key, problem)
    }

    fn pattern(
        &self,
        raw: Option<Spanned<String>>,
        index: usize,
        kind: &str,
    ) -> Result<ResourcePattern, ConfigError> {
        let Some(raw) = raw else {
            return Ok(ResourcePattern::nothing());
        };
        ResourcePattern::new(raw.get_ref()).or_else(|e| {
            let key = format!("permissions[{index}].{kind}");
            self.error(
                raw.span().start,
                key,
                Problem::InvalidRegex(regex_reason(&e)),
            )
        })
    }
}

/// The one-line reason from the regex crate's multi-line, caret-drawing message.
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    match text.lines().find_map(|l| l.strip_prefix("error: ")) {
        Some(reason) => reason.to_owned(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}
