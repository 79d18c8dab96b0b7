//! Users, passwords and permissions, as configured in `broker.toml`.
//!
//! Passwords are stored the way RabbitMQ's `rabbit_password_hashing_sha256` stores them, so a
//! hash exported from RabbitMQ (`rabbitmqctl export_definitions`) can be pasted into
//! `broker.toml` unchanged: `base64(salt ++ SHA-256(salt ++ utf8 password))` with a 4-byte
//! random salt.
//!
//! Permissions follow RabbitMQ too: a user has three regexes per vhost (configure, write,
//! read), each searched unanchored in the resource name, and the empty pattern grants nothing.
//! Callers check the exchange or queue name; RabbitMQ checks the default exchange under the
//! name `amq.default`, and so should we.
//!
//! Every [`AuthError`] is ACCESS_REFUSED (403) on the wire: the variants only exist so the log
//! can say why, while the client learns nothing about which usernames exist.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// Length of the random salt in a stored password hash.
const SALT_LEN: usize = 4;
/// Length of a SHA-256 digest.
const DIGEST_LEN: usize = 32;

/// A decoded, validated password hash: the salt and SHA-256(salt ++ password).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    salt: [u8; SALT_LEN],
    digest: [u8; DIGEST_LEN],
}

/// Why a `password_hash` string from the configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordHashError {
    /// The string is not standard, padded base64.
    #[error("not valid base64 ({0})")]
    NotBase64(base64::DecodeError),
    /// The decoded bytes are not a 4-byte salt followed by a 32-byte SHA-256 digest.
    #[error("decodes to {got} bytes; expected 36 (4-byte salt + 32-byte SHA-256 digest)")]
    WrongLength {
        /// How many bytes the base64 decoded to.
        got: usize,
    },
}

/// The operating system could not supply randomness for a salt.
#[derive(Debug, thiserror::Error)]
#[error("cannot generate a password salt: {0}")]
pub struct SaltError(getrandom::Error);

impl PasswordHash {
    /// Decodes a hash in `rabbit_password_hashing_sha256` format.
    pub fn parse(encoded: &str) -> Result<Self, PasswordHashError> {
        let bytes = BASE64
            .decode(encoded.trim())
            .map_err(PasswordHashError::NotBase64)?;
        let (salt, digest) = bytes
            .split_first_chunk::<SALT_LEN>()
            .ok_or(PasswordHashError::WrongLength { got: bytes.len() })?;
        let digest: [u8; DIGEST_LEN] = digest
            .try_into()
            .map_err(|_| PasswordHashError::WrongLength { got: bytes.len() })?;
        Ok(Self {
            salt: *salt,
            digest,
        })
    }

    /// Hashes `password` with the given salt.
    pub fn compute(salt: [u8; SALT_LEN], password: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(salt)
            .chain_update(password)
            .finalize()
            .into();
        Self { salt, digest }
    }

    /// Encodes the hash back to the `rabbit_password_hashing_sha256` text form.
    pub fn encode(&self) -> String {
        let mut bytes = [0u8; SALT_LEN + DIGEST_LEN];
        bytes[..SALT_LEN].copy_from_slice(&self.salt);
        bytes[SALT_LEN..].copy_from_slice(&self.digest);
        BASE64.encode(bytes)
    }
}

// Hashes end up in logs via `Debug` of the config; a digest is guessable offline, so hide it.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// Checked against for unknown users, so they take as long to refuse as known ones.
const UNKNOWN_USER_HASH: PasswordHash = PasswordHash {
    salt: [0; SALT_LEN],
    digest: [0; DIGEST_LEN],
};

/// Hashes `password` with a fresh random salt, giving the text to put in `password_hash`.
pub fn hash_password(password: &str) -> Result<String, SaltError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(SaltError)?;
    Ok(PasswordHash::compute(salt, password.as_bytes()).encode())
}

/// Checks `password` against a stored hash, in time independent of where they differ.
pub fn verify_password(stored: &PasswordHash, password: &[u8]) -> bool {
    let candidate = PasswordHash::compute(stored.salt, password);
    // XOR-accumulate instead of `==`, which may return at the first differing byte.
    let diff = candidate
        .digest
        .iter()
        .zip(stored.digest.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

/// Splits a SASL PLAIN response, `[authzid] NUL authcid NUL passwd`, into username and password.
///
/// The authorization identity is ignored, as RabbitMQ does. Returns `None` when there are not
/// exactly two NULs or the username is empty or not UTF-8; the handshake answers that with
/// ACCESS_REFUSED (403).
pub fn parse_plain(response: &[u8]) -> Option<(&str, &[u8])> {
    let mut parts = response.splitn(3, |&b| b == 0);
    let _authzid = parts.next()?;
    let authcid = parts.next()?;
    let passwd = parts.next()?;
    if passwd.contains(&0) || authcid.is_empty() {
        return None;
    }
    Some((std::str::from_utf8(authcid).ok()?, passwd))
}

/// One permission regex, compiled once at config load.
#[derive(Debug, Clone)]
pub struct ResourcePattern {
    source: String,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// The empty pattern: RabbitMQ treats it as "nothing", not "anything".
    Nothing,
    /// `.*`, by far the most common pattern; skips the regex engine.
    Everything,
    Regex(Regex),
}

impl ResourcePattern {
    /// Compiles a RabbitMQ permission pattern.
    ///
    /// Deviation: RabbitMQ uses PCRE; Rust's `regex` has no backreferences or lookaround, so
    /// patterns using them are rejected at load instead of silently behaving differently.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let matcher = match source {
            "" => Matcher::Nothing,
            ".*" => Matcher::Everything,
            _ => Matcher::Regex(Regex::new(source)?),
        };
        Ok(Self {
            source: source.to_owned(),
            matcher,
        })
    }

    /// The empty pattern, granting nothing.
    pub fn nothing() -> Self {
        Self {
            source: String::new(),
            matcher: Matcher::Nothing,
        }
    }

    /// The pattern `.*`, granting every resource.
    pub fn everything() -> Self {
        Self {
            source: ".*".to_owned(),
            matcher: Matcher::Everything,
        }
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches anywhere in `resource` (unanchored, as RabbitMQ).
    pub fn matches(&self, resource: &str) -> bool {
        match &self.matcher {
            Matcher::Nothing => false,
            Matcher::Everything => true,
            Matcher::Regex(regex) => regex.is_match(resource),
        }
    }
}

impl PartialEq for ResourcePattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for ResourcePattern {}

/// A user's rights in one vhost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// Declare and delete exchanges and queues whose names match.
    pub configure: ResourcePattern,
    /// Publish to exchanges and bind to queues whose names match.
    pub write: ResourcePattern,
    /// Consume from queues and bind from exchanges whose names match.
    pub read: ResourcePattern,
}

impl Permissions {
    /// `.*` for configure, write and read: everything in the vhost.
    pub fn full() -> Self {
        Self {
            configure: ResourcePattern::everything(),
            write: ResourcePattern::everything(),
            read: ResourcePattern::everything(),
        }
    }

    /// May the user declare or delete `resource`? Refusal is ACCESS_REFUSED (403).
    pub fn can_configure(&self, resource: &str) -> bool {
        self.configure.matches(resource)
    }

    /// May the user write to `resource`? Refusal is ACCESS_REFUSED (403).
    pub fn can_write(&self, resource: &str) -> bool {
        self.write.matches(resource)
    }

    /// May the user read from `resource`? Refusal is ACCESS_REFUSED (403).
    pub fn can_read(&self, resource: &str) -> bool {
        self.read.matches(resource)
    }
}

/// Why a login was refused. Every variant is ACCESS_REFUSED (403) on the wire; the detail is
/// for the log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No user of that name is configured.
    #[error("user '{username}' does not exist")]
    UnknownUser {
        /// The name the client sent.
        username: String,
    },
    /// The password does not match the stored hash.
    #[error("wrong password for user '{username}'")]
    WrongPassword {
        /// The user who tried.
        username: String,
    },
    /// The user is `loopback_only` and connected from elsewhere.
    #[error("user '{username}' may only connect via localhost, not from {peer}")]
    NotLoopback {
        /// The user who tried.
        username: String,
        /// The address the connection came from.
        peer: IpAddr,
    },
}

/// A user whose credentials were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedUser {
    name: String,
}

impl AuthenticatedUser {
    /// The username.
    pub fn name(&self) -> &str {
        &self.name
    }
}

#[derive(Debug)]
struct UserEntry {
    hash: PasswordHash,
    loopback_only: bool,
}

/// The configured users, vhosts and permissions, indexed for lookups during the handshake.
#[derive(Debug)]
pub struct Users {
    users: HashMap<String, UserEntry>,
    vhosts: HashSet<String>,
    /// user -> vhost -> permissions.
    permissions: HashMap<String, HashMap<String, Permissions>>,
}

impl Users {
    /// Indexes a validated configuration (names are unique and references resolved there).
    pub fn new(config: &Config) -> Self {
        let users = config
            .users
            .iter()
            .map(|u| {
                let entry = UserEntry {
                    hash: u.password_hash.clone(),
                    loopback_only: u.loopback_only,
                };
                (u.name.clone(), entry)
            })
            .collect();
        let vhosts = config.vhosts.iter().map(|v| v.name.clone()).collect();
        let mut permissions: HashMap<String, HashMap<String, Permissions>> = HashMap::new();
        for p in &config.permissions {
            permissions
                .entry(p.user.clone())
                .or_default()
                .insert(p.vhost.clone(), p.permissions.clone());
        }
        Self {
            users,
            vhosts,
            permissions,
        }
    }

    /// Checks a username and password from a connection coming from `peer`.
    ///
    /// Any error is ACCESS_REFUSED (403) for the client.
    pub fn authenticate(
        &self,
        username: &str,
        password: &[u8],
        peer: IpAddr,
    ) -> Result<AuthenticatedUser, AuthError> {
        let Some(user) = self.users.get(username) else {
            // Hash anyway so an unknown name costs as long as a wrong password.
            verify_password(&UNKNOWN_USER_HASH, password);
            return Err(AuthError::UnknownUser {
                username: username.to_owned(),
            });
        };
        if !verify_password(&user.hash, password) {
            return Err(AuthError::WrongPassword {
                username: username.to_owned(),
            });
        }
        // Checked after the password, as RabbitMQ does, so the refusal reveals nothing new.
        if user.loopback_only && !is_loopback(peer) {
            return Err(AuthError::NotLoopback {
                username: username.to_owned(),
                peer,
            });
        }
        Ok(AuthenticatedUser {
            name: username.to_owned(),
        })
    }

    /// The user's permissions in `vhost`, or `None` if they have no access to it at all
    /// (connection.open then fails with NOT_ALLOWED 530, as RabbitMQ).
    pub fn permissions(&self, user: &str, vhost: &str) -> Option<&Permissions> {
        self.permissions.get(user)?.get(vhost)
    }

    /// Whether `name` is a configured vhost.
    pub fn vhost_exists(&self, name: &str) -> bool {
        self.vhosts.contains(name)
    }
}

/// 127.0.0.0/8 and ::1, plus IPv4-mapped 127/8 seen on dual-stack listeners (as RabbitMQ).
fn is_loopback(peer: IpAddr) -> bool {
    match peer {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// Computed outside Rust: salt 90 8d c6 0a; SHA-256(salt ++ "guest") =
    /// bb3004b3594331c927de502e8c9f015a286219ef7fb8dbaa25bd063398525a1e;
    /// base64(salt ++ digest) below.
    const GUEST_FIXED_SALT: &str = "kI3GCrswBLNZQzHJJ95QLoyfAVooYhnvf7jbqiW9BjOYUloe";

    #[test]
    fn hash_scheme_matches_rabbitmq_sha256() {
        let hash = PasswordHash::compute([0x90, 0x8d, 0xc6, 0x0a], b"guest");
        assert_eq!(hash.encode(), GUEST_FIXED_SALT);
        let parsed = PasswordHash::parse(GUEST_FIXED_SALT).unwrap();
        assert!(verify_password(&parsed, b"guest"));
        assert!(!verify_password(&parsed, b"guesT"));
    }

    #[test]
    fn hash_password_uses_fresh_salt_and_verifies() {
        let a = hash_password("s3cret").unwrap();
        let b = hash_password("s3cret").unwrap();
        assert_ne!(a, b);
        let parsed = PasswordHash::parse(&a).unwrap();
        assert!(verify_password(&parsed, b"s3cret"));
        assert!(!verify_password(&parsed, b""));
    }

    #[test]
    fn password_hash_rejects_bad_base64_and_length() {
        assert!(matches!(
            PasswordHash::parse("not base64!"),
            Err(PasswordHashError::NotBase64(_))
        ));
        assert_eq!(
            PasswordHash::parse("AAAA"),
            Err(PasswordHashError::WrongLength { got: 3 })
        );
    }

    #[test]
    fn debug_hides_digest() {
        let hash = PasswordHash::compute([1, 2, 3, 4], b"x");
        assert_eq!(format!("{hash:?}"), "PasswordHash(..)");
    }

    #[test]
    fn parse_plain_splits_and_ignores_authzid() {
        assert_eq!(parse_plain(b"\0guest\0pw"), Some(("guest", &b"pw"[..])));
        assert_eq!(
            parse_plain(b"admin\0guest\0pw"),
            Some(("guest", &b"pw"[..]))
        );
        assert_eq!(parse_plain(b"\0guest\0"), Some(("guest", &b""[..])));
    }

    #[test]
    fn parse_plain_rejects_malformed() {
        assert_eq!(parse_plain(b""), None);
        assert_eq!(parse_plain(b"guest"), None);
        assert_eq!(parse_plain(b"\0guest"), None);
        assert_eq!(parse_plain(b"\0\0pw"), None);
        assert_eq!(parse_plain(b"\0guest\0pw\0extra"), None);
        assert_eq!(parse_plain(b"\0\xff\0pw"), None);
    }

    #[test]
    fn patterns_are_unanchored_and_empty_matches_nothing() {
        let p = ResourcePattern::new("^amq\\.").unwrap();
        assert!(p.matches("amq.topic"));
        assert!(!p.matches("my.amq.topic"));
        let any = ResourcePattern::new("tmp").unwrap();
        assert!(any.matches("a-tmp-queue"));
        let none = ResourcePattern::new("").unwrap();
        assert!(!none.matches(""));
        assert!(!none.matches("anything"));
        let all = ResourcePattern::new(".*").unwrap();
        assert!(all.matches("") && all.matches("x"));
        assert_eq!(all, ResourcePattern::everything());
        assert!(ResourcePattern::new("(").is_err());
    }

    #[test]
    fn permissions_check_each_kind() {
        let perms = Permissions {
            configure: ResourcePattern::new("").unwrap(),
            write: ResourcePattern::new("^out$").unwrap(),
            read: ResourcePattern::new(".*").unwrap(),
        };
        assert!(!perms.can_configure("q"));
        assert!(perms.can_write("out"));
        assert!(!perms.can_write("outbox"));
        assert!(perms.can_read("q"));
    }

    fn users() -> Users {
        let text = format!(
            "[[users]]\nname = \"guest\"\npassword_hash = \"{GUEST_FIXED_SALT}\"\n\
             loopback_only = true\n\
             [[users]]\nname = \"app\"\npassword_hash = \"{}\"\n\
             [[vhosts]]\nname = \"/\"\n\
             [[permissions]]\nuser = \"app\"\nvhost = \"/\"\nread = \".*\"\n",
            hash_password("app-pw").unwrap()
        );
        Users::new(&Config::parse(&text, "test.toml").unwrap())
    }

    #[test]
    fn authenticate_accepts_right_password() {
        let peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let user = users().authenticate("app", b"app-pw", peer).unwrap();
        assert_eq!(user.name(), "app");
    }

    #[test]
    fn authenticate_refuses_unknown_user_and_wrong_password() {
        let users = users();
        let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert!(matches!(
            users.authenticate("nobody", b"x", peer),
            Err(AuthError::UnknownUser { .. })
        ));
        assert!(matches!(
            users.authenticate("app", b"wrong", peer),
            Err(AuthError::WrongPassword { .. })
        ));
    }

    #[test]
    fn loopback_only_user_refused_from_remote_address() {
        let users = users();
        let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert!(matches!(
            users.authenticate("guest", b"guest", remote),
            Err(AuthError::NotLoopback { .. })
        ));
        for local in [
            IpAddr::V4(Ipv4Addr::new(127, 1, 2, 3)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        ] {
            assert!(
                users.authenticate("guest", b"guest", local).is_ok(),
                "{local}"
            );
        }
    }

    #[test]
    fn permissions_and_vhosts_are_looked_up() {
        let users = users();
        assert!(users.vhost_exists("/"));
        assert!(!users.vhost_exists("other"));
        assert!(users.permissions("app", "/").unwrap().can_read("q"));
        assert!(users.permissions("guest", "/").is_none());
        assert!(users.permissions("app", "other").is_none());
    }
}
