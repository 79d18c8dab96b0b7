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
//! entry, and every limit is within the range documented on [`Limits`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use warren_codec::FieldTable;
use warren_routing::ExchangeKind;

use crate::auth::{PasswordHash, Permissions, ResourcePattern};
pub use crate::config_error::{ConfigError, Location, Problem};
use crate::policy::Policy;

/// The configuration used when no file is given: guest/guest from localhost, vhost "/".
const DEFAULT_TOML: &str = include_str!("default.toml");

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

/// One `[[exchanges]]` entry: an exchange the broker declares at start.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeConfig {
    /// A vhost defined in `[[vhosts]]` (default "/").
    pub vhost: String,
    /// Its name: not empty, not starting with `amq.`, at most 255 bytes.
    pub name: String,
    /// `type`: direct, fanout, topic or headers.
    pub kind: ExchangeKind,
    /// Survives a restart (default true).
    pub durable: bool,
    /// Deleted when its last binding goes (default false).
    pub auto_delete: bool,
    /// Only reachable through exchange-to-exchange bindings (default false).
    pub internal: bool,
    /// Exchange arguments (`alternate-exchange`, ...).
    pub arguments: FieldTable,
}

/// One `[[queues]]` entry: a queue the broker declares at start.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// A vhost defined in `[[vhosts]]` (default "/").
    pub vhost: String,
    /// Its name: not empty, not starting with `amq.`, at most 255 bytes.
    pub name: String,
    /// Survives a restart, with its persistent messages (default true).
    pub durable: bool,
    /// Deleted when its last consumer goes (default false).
    pub auto_delete: bool,
    /// Queue arguments (`x-max-length`, `x-dead-letter-exchange`, ...), checked as a
    /// queue.declare would check them.
    pub arguments: FieldTable,
}

/// What a binding routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingDestination {
    /// A queue (the default).
    Queue,
    /// An exchange (an exchange-to-exchange binding).
    Exchange,
}

/// One `[[bindings]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BindingConfig {
    /// A vhost defined in `[[vhosts]]` (default "/").
    pub vhost: String,
    /// The exchange messages come from: one in `[[exchanges]]` of the same vhost, or a
    /// predeclared `amq.*` exchange.
    pub source: String,
    /// The queue (or exchange) they go to, defined in this file.
    pub destination: String,
    /// `destination_type`: "queue" (default) or "exchange".
    pub destination_kind: BindingDestination,
    /// The binding key (default "").
    pub routing_key: String,
    /// Binding arguments (`x-match` and header values for headers exchanges).
    pub arguments: FieldTable,
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
        Ok(Config {
            listen,
            data_dir,
            fsync: raw.server.fsync.unwrap_or(true),
            management: self.management(&raw.management)?,
            limits,
            users,
            vhosts,
            permissions,
            exchanges: Vec::new(),
            queues: Vec::new(),
            bindings: Vec::new(),
            policies: Vec::new(),
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
        let Some(value) = value else {
            return Ok(default);
        };
        let got = *value.get_ref();
        let problem = if got < min {
            Problem::TooSmall { min, got }
        } else if got > max {
            Problem::TooLarge { max, got }
        } else if let Ok(v) = T::try_from(got) {
            return Ok(v);
        } else {
            // Only reachable if a caller's bounds exceed T's range.
            Problem::TooLarge { max, got }
        };
        self.error(value.span().start, format!("limits.{name}"), problem)
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
        let known = if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        };
        let at = name.span().start;
        let problem = Problem::UnknownReference {
            kind,
            name: name.into_inner(),
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::verify_password;

    #[test]
    fn embedded_default_parses_and_matches_builtin() {
        let parsed = Config::parse(DEFAULT_TOML, "default.toml").unwrap();
        assert_eq!(parsed, Config::builtin_default());
        assert_eq!(Config::embedded_default(), parsed);
    }

    #[test]
    fn embedded_default_is_guest_on_loopback() {
        let config = Config::embedded_default();
        assert_eq!(config.listen, "127.0.0.1:5672".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        let guest = &config.users[0];
        assert!(guest.loopback_only);
        assert!(verify_password(&guest.password_hash, b"guest"));
        assert!(config.permissions[0].permissions.can_configure("anything"));
    }

    #[test]
    fn example_broker_toml_parses() {
        let config = Config::parse(include_str!("../../../broker.toml"), "broker.toml").unwrap();
        assert_eq!(config.limits, Limits::default());
        assert_eq!(config.users.len(), 1);
        assert!(config.users[0].loopback_only);
        assert!(verify_password(&config.users[0].password_hash, b"guest"));
        assert_eq!(config.vhosts[0].name, "/");
        let perms = &config.permissions[0].permissions;
        assert!(perms.can_configure("q") && perms.can_write("x") && perms.can_read("q"));
    }

    #[test]
    fn empty_file_takes_defaults_and_has_no_users() {
        let config = Config::parse("", "broker.toml").unwrap();
        assert_eq!(config.listen, SocketAddr::from((Ipv4Addr::LOCALHOST, 5672)));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.limits, Limits::default());
        assert!(config.users.is_empty() && config.vhosts.is_empty());
        assert!(config.permissions.is_empty());
    }

    #[test]
    fn limits_and_server_are_read() {
        let text = "[server]\nlisten = \"[::1]:5673\"\ndata_dir = \"/var/lib/warren\"\nfsync = false\n\
                    [limits]\nframe_max = 4096\nchannel_max = 65535\nheartbeat = 0\n\
                    max_message_size = 536870912\nhandshake_timeout = 3\nmax_connections = 7\n\
                    memory_high_watermark = 1073741824\ndisk_free_limit = 0\n";
        let config = Config::parse(text, "broker.toml").unwrap();
        assert_eq!(config.listen, "[::1]:5673".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/warren"));
        assert!(!config.fsync);
        let expected = Limits {
            frame_max: 4096,
            channel_max: 65535,
            heartbeat: 0,
            max_message_size: 512 * 1024 * 1024,
            handshake_timeout: Duration::from_secs(3),
            max_connections: 7,
            memory_high_watermark: Watermark::Bytes(1 << 30),
            disk_free_limit: 0,
        };
        assert_eq!(config.limits, expected);
    }

    #[test]
    fn memory_watermark_is_a_fraction_or_bytes() {
        let watermark = |value: &str| {
            Config::parse(
                &format!("[limits]\nmemory_high_watermark = {value}\n"),
                "b.toml",
            )
            .map(|c| c.limits.memory_high_watermark)
            .map_err(|e| e.to_string())
        };
        assert_eq!(watermark("0.6"), Ok(Watermark::PerMille(600)));
        assert_eq!(watermark("1.0"), Ok(Watermark::PerMille(1000)));
        assert_eq!(watermark("500000000"), Ok(Watermark::Bytes(500_000_000)));
        for bad in ["0.0", "1.5", "0", "-3"] {
            let error = watermark(bad).err().unwrap_or_default();
            assert!(
                error.starts_with("b.toml:2:25: limits.memory_high_watermark: expected a fraction"),
                "{error}"
            );
        }
    }

    #[test]
    fn omitted_permission_patterns_grant_nothing() {
        let text = format!(
            "[[users]]\nname = \"ro\"\npassword_hash = \"{}\"\n[[vhosts]]\nname = \"v\"\n\
             [[permissions]]\nuser = \"ro\"\nvhost = \"v\"\nread = \"^q$\"\n",
            PasswordHash::compute([0; 4], b"pw").encode()
        );
        let config = Config::parse(&text, "broker.toml").unwrap();
        let perms = &config.permissions[0].permissions;
        assert!(perms.can_read("q") && !perms.can_read("q2"));
        assert!(!perms.can_write("q") && !perms.can_configure("q"));
        assert!(!config.users[0].loopback_only);
    }

    #[test]
    fn load_reads_a_file() {
        let path = std::env::temp_dir().join(format!("warren-config-{}.toml", std::process::id()));
        std::fs::write(&path, "[limits]\nheartbeat = 5\n").unwrap();
        let loaded = Config::load(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(loaded.unwrap().limits.heartbeat, 5);
    }

    #[test]
    fn load_names_unreadable_file() {
        let err = Config::load(Path::new("/nonexistent/warren.toml")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/nonexistent/warren.toml: cannot read: "),
            "{text}"
        );
        assert!(matches!(err, ConfigError::Read { .. }));
    }

    #[test]
    fn load_errors_name_the_path() {
        let path = std::env::temp_dir().join(format!("warren-bad-{}.toml", std::process::id()));
        std::fs::write(&path, "\n[limits]\nframe_max = 1\n").unwrap();
        let loaded = Config::load(&path);
        std::fs::remove_file(&path).unwrap();
        let expected = format!("{}:3:13: limits.frame_max: ", path.display());
        assert!(loaded.unwrap_err().to_string().starts_with(&expected));
    }
}
