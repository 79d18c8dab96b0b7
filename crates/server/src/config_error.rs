//! Errors from loading `broker.toml`.
//!
//! Invariant: every error about the file's contents carries a [`Location`] (file, line,
//! column) and the dotted key path (`limits.frame_max`, `users[1].name`), and its text says
//! what would have been accepted, so an operator can fix the file without reading our code.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::PathBuf;

use crate::auth::PasswordHashError;

/// A configuration file that could not be read or is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        /// The file we tried to read.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file was read but its contents are wrong.
    #[error("{location}: {}", Described::new(.key, .problem))]
    Invalid {
        /// Where in which file.
        location: Location,
        /// Dotted key path, e.g. `limits.frame_max`; empty for a TOML syntax error.
        key: String,
        /// What is wrong (boxed to keep `Result<_, ConfigError>` small).
        problem: Box<Problem>,
    },
}

impl ConfigError {
    /// The problem, when the file's contents (not its reading) failed.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Read { .. } => None,
            Self::Invalid { problem, .. } => Some(problem.as_ref()),
        }
    }
}

/// A position in a configuration file; displays as `file:line:column` (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name given to `Config::parse` or the path given to `Config::load`.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// The line and column of byte `offset` in `text`.
    pub fn at(origin: &str, text: &str, offset: usize) -> Self {
        let mut offset = offset.min(text.len());
        // A span from the parser always starts on a char boundary; be safe anyway.
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            origin: origin.to_owned(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// `line L, column C`, for pointing at an earlier definition in the same file.
    pub fn line_column(&self) -> String {
        format!("line {}, column {}", self.line, self.column)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.origin, self.line, self.column)
    }
}

/// What is wrong with one value or key.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    /// The text is not TOML.
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A key this schema does not have; the error's key is the enclosing table.
    #[error("unknown key `{name}`; expected {expected}")]
    UnknownKey {
        /// The key as written.
        name: String,
        /// The keys allowed there, as serde lists them.
        expected: String,
    },
    /// Wrong type or missing required key, in serde's words (`invalid type: string "x",
    /// expected u16`).
    #[error("{0}")]
    Type(String),
    /// A number below its minimum.
    #[error("must be at least {min} (got {got})")]
    TooSmall {
        /// Smallest allowed value.
        min: i64,
        /// The value given.
        got: i64,
    },
    /// A number above its maximum.
    #[error("must be at most {max} (got {got})")]
    TooLarge {
        /// Largest allowed value.
        max: i64,
        /// The value given.
        got: i64,
    },
    /// A string that must not be empty is.
    #[error("must not be empty")]
    Empty,
    /// `server.listen` does not parse.
    #[error("`{0}` is not a socket address; expected IP:port, e.g. 127.0.0.1:5672 or [::1]:5672")]
    InvalidAddress(String),
    /// A name defined twice: a user or vhost, or an exchange, queue or policy in the same
    /// vhost.
    #[error("duplicate {kind} `{name}` (first defined at {first})")]
    Duplicate {
        /// `user`, `vhost`, `exchange`, `queue` or `policy`.
        kind: &'static str,
        /// The repeated name.
        name: String,
        /// `line L, column C` of the first definition.
        first: String,
    },
    /// Two `[[permissions]]` entries for the same user and vhost.
    #[error(
        "second permissions entry for user `{user}` in vhost `{vhost}` (first at {first}); \
         merge them into one"
    )]
    DuplicatePermission {
        /// The user.
        user: String,
        /// The vhost.
        vhost: String,
        /// `line L, column C` of the first entry.
        first: String,
    },
    /// A reference to a user, vhost, exchange or queue that is not defined.
    #[error("no {kind} `{name}` is defined{}; defined: {known}", in_vhost(.vhost))]
    UnknownReference {
        /// `user`, `vhost`, `exchange` or `queue`.
        kind: &'static str,
        /// The missing name.
        name: String,
        /// The vhost looked in, for exchanges and queues.
        vhost: Option<String>,
        /// Comma-separated defined names, or `none`.
        known: String,
    },
    /// A string longer than AMQP allows (a short string: 255 bytes).
    #[error("must be at most {max} bytes long (got {got} bytes)")]
    TooLong {
        /// Longest allowed, in bytes.
        max: usize,
        /// The length given, in bytes.
        got: usize,
    },
    /// An exchange or queue name in the broker's `amq.` namespace.
    #[error(
        "{kind} names starting with `amq.` are reserved for the broker (a client's declare \
         gets 403 ACCESS_REFUSED); choose another name"
    )]
    ReservedName {
        /// `exchange` or `queue`.
        kind: &'static str,
    },
    /// A value that must be one of a fixed set of words (an exchange type, a binding's
    /// destination type, an overflow behaviour).
    #[error("unknown value `{got}`; expected {expected}")]
    UnknownKind {
        /// The value given.
        got: String,
        /// The values allowed, e.g. "one of `direct`, `fanout`, `topic`, `headers`".
        expected: &'static str,
    },
    /// An exchange, queue or binding argument refused as the matching declare or bind
    /// would refuse it.
    #[error("{text}{}", expected_suffix(*.expected))]
    InvalidArgument {
        /// The broker's refusal text, as a client would get it (RabbitMQ's wording).
        text: String,
        /// What the argument accepts, when known.
        expected: Option<&'static str>,
    },
    /// A TOML date or time among `arguments`.
    #[error(
        "a date or time cannot be an argument value (AMQP field tables have no such type); \
         write it as a string or as an integer timestamp"
    )]
    DatetimeArgument,
    /// A binding from or to the default exchange.
    #[error(
        "the default exchange (\"\") cannot be bound: it routes to the queue named by the \
         routing key by itself; bind from or to another exchange"
    )]
    DefaultExchange,
    /// A policy `pattern` that is not a glob.
    #[error(
        "invalid glob pattern: {0}; `*` matches any run of characters, `?` one character, \
         `[abc]` one of a set and `[!abc]` one not in it"
    )]
    InvalidPattern(String),
    /// A policy that sets nothing.
    #[error("a policy must set at least one of {}", policy_keys())]
    NoSettings,
    /// A policy `apply_to` other than `queues`.
    #[error("`{0}` is not supported; only `queues` is supported (policies apply to queues)")]
    OnlyQueues(String),
    /// A permission pattern that does not compile.
    #[error("invalid regex (Rust regex syntax; no lookaround or backreferences): {0}")]
    InvalidRegex(String),
    /// A `password_hash` that is not RabbitMQ's SHA-256 format.
    #[error(
        "invalid password hash: {0}; expected base64 of 4-byte salt ++ SHA-256(salt ++ password)"
    )]
    PasswordHash(PasswordHashError),
}

/// The words " in vhost `v`" for a reference looked up in a vhost, else nothing.
fn in_vhost(vhost: &Option<String>) -> String {
    vhost
        .as_ref()
        .map_or_else(String::new, |v| format!(" in vhost `{v}`"))
}

/// `; expected ...` when an argument's accepted values are known.
fn expected_suffix(expected: Option<&str>) -> String {
    expected.map_or_else(String::new, |e| format!("; expected {e}"))
}

/// The keys a policy can set, as written in broker.toml: `a`, `b`, ...
fn policy_keys() -> String {
    let keys: Vec<String> = crate::policy::PolicyKey::ALL
        .iter()
        .map(|k| format!("`{}`", k.as_str()))
        .collect();
    keys.join(", ")
}

/// Renders key and problem; unknown keys read as `unknown key `x` in [limits]`.
struct Described<'a> {
    key: &'a str,
    problem: &'a Problem,
}

impl<'a> Described<'a> {
    fn new(key: &'a str, problem: &'a Problem) -> Self {
        Self { key, problem }
    }
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            Problem::UnknownKey { name, expected } => {
                let table = self.key.strip_suffix(name.as_str()).unwrap_or(self.key);
                match table.strip_suffix('.').unwrap_or(table) {
                    "" => write!(f, "unknown top-level key `{name}`; expected {expected}"),
                    t if t.ends_with(']') => {
                        write!(f, "unknown key `{name}` in {t}; expected {expected}")
                    }
                    t => write!(f, "unknown key `{name}` in [{t}]; expected {expected}"),
                }
            }
            problem if self.key.is_empty() => write!(f, "{problem}"),
            problem => write!(f, "{}: {problem}", self.key),
        }
    }
}

/// Turns a syntax error from the TOML parser into a located error.
///
/// The parser gives no key path, so the text under the error's span (`duplicate key` at
/// `frame_max`) stands in for it.
pub(crate) fn from_syntax(origin: &str, text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span().unwrap_or(0..0);
    let mut message = error.message().trim_end().to_owned();
    if let Some(token) = text.get(span.clone()).filter(|t| is_short_token(t)) {
        message = format!("{message} (at `{token}`)");
    }
    ConfigError::Invalid {
        location: Location::at(origin, text, span.start),
        key: String::new(),
        problem: Box::new(Problem::Syntax(message)),
    }
}

fn is_short_token(token: &str) -> bool {
    !token.trim().is_empty() && token.len() <= 64 && !token.contains('\n')
}

/// Turns a deserialization error (unknown key, wrong type, missing key) into a located error.
pub(crate) fn from_serde(
    origin: &str,
    text: &str,
    error: serde_path_to_error::Error<toml::de::Error>,
) -> ConfigError {
    // `toml::Spanned` shows up as an extra path segment, also in the middle of a path
    // (`exchanges[0].$__serde_spanned_private_value.type`); the root renders as ".".
    let path = error
        .path()
        .to_string()
        .replace(".$__serde_spanned_private_value", "");
    let path = path.split(".$__serde_spanned").next().unwrap_or_default();
    let key = if path == "." {
        String::new()
    } else {
        path.to_owned()
    };
    let inner = error.into_inner();
    // Limits are read as i64 only to range-check them; the reader needs to know "integer".
    let message = inner
        .message()
        .trim_end()
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array")
        .replace("missing field", "missing key");
    // serde's wording is fixed: "unknown field `x`, expected one of `a`, `b`".
    let problem = match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once("`, "))
    {
        Some((name, expected)) => Problem::UnknownKey {
            name: name.to_owned(),
            expected: expected
                .strip_prefix("expected ")
                .unwrap_or(expected)
                .to_owned(),
        },
        None => Problem::Type(message),
    };
    ConfigError::Invalid {
        location: Location::at(origin, text, span_start(inner.span())),
        key,
        problem: Box::new(problem),
    }
}

/// Errors without a span (rare: serde's own) are reported at the start of the file.
fn span_start(span: Option<Range<usize>>) -> usize {
    span.map_or(0, |s| s.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_chars() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(Location::at("f", text, 0).to_string(), "f:1:1");
        assert_eq!(Location::at("f", text, 6).to_string(), "f:2:1");
        // 'é' is two bytes but one column.
        assert_eq!(Location::at("f", text, 9).to_string(), "f:2:3");
        assert_eq!(Location::at("f", text, 999).to_string(), "f:3:1");
    }
}

/// One test per kind of error: each asserts the whole `file:line:col: key` prefix.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod parse_error_tests {
    use crate::config::Config;

    /// `guest`, salt 90 8d c6 0a (see auth's test vector).
    const HASH: &str = "kI3GCrswBLNZQzHJJ95QLoyfAVooYhnvf7jbqiW9BjOYUloe";

    fn error(text: &str) -> String {
        Config::parse(text, "broker.toml").unwrap_err().to_string()
    }

    fn assert_error(text: &str, prefix: &str, rest: &str) {
        let message = error(text);
        assert!(
            message.starts_with(prefix),
            "{message:?} should start with {prefix:?}"
        );
        assert!(
            message.contains(rest),
            "{message:?} should contain {rest:?}"
        );
    }

    /// A user `u` and vhost `v`, so permission tests can refer to them.
    fn with_user_and_vhost(rest: &str) -> String {
        format!(
            "[[users]]\nname = \"u\"\npassword_hash = \"{HASH}\"\n[[vhosts]]\nname = \"v\"\n{rest}"
        )
    }

    #[test]
    fn unknown_key_in_table_lists_allowed_keys() {
        assert_error(
            "[limits]\nheartbeat = 5\n\nfram_max = 1\n",
            "broker.toml:4:1: unknown key `fram_max` in [limits]; expected one of `frame_max`",
            "`max_connections`",
        );
    }

    #[test]
    fn unknown_top_level_key() {
        assert_error(
            "[limitz]\n",
            "broker.toml:1:2: unknown top-level key `limitz`",
            "`limits`",
        );
    }

    #[test]
    fn unknown_key_in_array_entry() {
        let text = format!("[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nadmin = true\n");
        assert_error(
            &text,
            "broker.toml:4:1: unknown key `admin` in users[0]",
            "`loopback_only`",
        );
    }

    #[test]
    fn wrong_type() {
        assert_error(
            "[limits]\nheartbeat = \"x\"\n",
            "broker.toml:2:13: limits.heartbeat: invalid type: string \"x\"",
            "expected an integer",
        );
        assert_error(
            "[[users]]\nname = \"a\"\npassword_hash = \"x\"\nloopback_only = 1\n",
            "broker.toml:4:17: users[0].loopback_only: invalid type: integer",
            "expected a boolean",
        );
    }

    #[test]
    fn missing_required_key() {
        assert_error(
            "[server]\n[[users]]\nname = \"a\"\n",
            "broker.toml:2:1: users[0]: missing key `password_hash`",
            "",
        );
    }

    #[test]
    fn toml_syntax_error() {
        assert_error(
            "[limits]\nframe_max = = 1\n",
            "broker.toml:2:",
            "invalid TOML",
        );
        assert_error(
            "[limits]\nheartbeat = 1\nheartbeat = 2\n",
            "broker.toml:3:1: invalid TOML: duplicate key",
            "`heartbeat`",
        );
    }

    #[test]
    fn limits_out_of_range() {
        assert_error(
            "[limits]\nframe_max = 1024\n",
            "broker.toml:2:13: limits.frame_max: must be at least 4096 (got 1024)",
            "",
        );
        assert_error(
            "[limits]\nchannel_max = 0\n",
            "broker.toml:2:15: limits.channel_max:",
            "at least 1",
        );
        assert_error(
            "[limits]\nchannel_max = 65536\n",
            "broker.toml:2:15: limits.channel_max: must be at most 65535 (got 65536)",
            "",
        );
        assert_error(
            "[limits]\nheartbeat = -1\n",
            "broker.toml:2:13: limits.heartbeat:",
            "at least 0",
        );
        assert_error(
            "[limits]\nmax_message_size = 536870913\n",
            "broker.toml:2:20: limits.max_message_size: must be at most 536870912",
            "",
        );
        assert_error(
            "[limits]\nhandshake_timeout = 0\n",
            "broker.toml:2:21: limits.handshake_timeout: must be at least 1",
            "",
        );
        assert_error(
            "[limits]\nmax_connections = 4294967296\n",
            "broker.toml:2:19: limits.max_connections: must be at most 4294967295",
            "",
        );
    }

    #[test]
    fn invalid_listen_address() {
        assert_error(
            "[server]\nlisten = \"localhost:5672\"\n",
            "broker.toml:2:10: server.listen: `localhost:5672` is not a socket address",
            "IP:port",
        );
    }

    #[test]
    fn empty_names_and_paths() {
        assert_error(
            "[server]\ndata_dir = \"\"\n",
            "broker.toml:2:12: server.data_dir:",
            "must not be empty",
        );
        assert_error(
            "[[vhosts]]\nname = \"\"\n",
            "broker.toml:2:8: vhosts[0].name:",
            "must not be empty",
        );
    }

    #[test]
    fn duplicate_user_and_vhost() {
        let user = format!("[[users]]\nname = \"a\"\npassword_hash = \"{HASH}\"\n");
        assert_error(
            &format!("{user}{user}"),
            "broker.toml:5:8: users[1].name: duplicate user `a`",
            "first defined at line 2, column 8",
        );
        assert_error(
            "[[vhosts]]\nname = \"/\"\n[[vhosts]]\nname = \"/\"\n",
            "broker.toml:4:8: vhosts[1].name: duplicate vhost `/`",
            "line 2, column 8",
        );
    }

    #[test]
    fn bad_password_hash() {
        assert_error(
            "[[users]]\nname = \"a\"\npassword_hash = \"not base64!\"\n",
            "broker.toml:3:17: users[0].password_hash: invalid password hash: not valid base64",
            "4-byte salt",
        );
        assert_error(
            "[[users]]\nname = \"a\"\npassword_hash = \"AAAA\"\n",
            "broker.toml:3:17: users[0].password_hash: invalid password hash: decodes to 3 bytes",
            "expected 36",
        );
    }

    #[test]
    fn permission_names_unknown_user_or_vhost() {
        assert_error(
            &with_user_and_vhost("[[permissions]]\nuser = \"bob\"\nvhost = \"v\"\n"),
            "broker.toml:7:8: permissions[0].user: no user `bob` is defined",
            "defined: u",
        );
        assert_error(
            &with_user_and_vhost("[[permissions]]\nuser = \"u\"\nvhost = \"/\"\n"),
            "broker.toml:8:9: permissions[0].vhost: no vhost `/` is defined",
            "defined: v",
        );
    }

    #[test]
    fn duplicate_permission_entry() {
        let entry = "[[permissions]]\nuser = \"u\"\nvhost = \"v\"\n";
        assert_error(
            &with_user_and_vhost(&format!("{entry}{entry}")),
            "broker.toml:11:9: permissions[1].vhost: second permissions entry for user `u`",
            "first at line 8, column 9",
        );
    }

    #[test]
    fn invalid_regex() {
        assert_error(
            &with_user_and_vhost("[[permissions]]\nuser = \"u\"\nvhost = \"v\"\nwrite = \"(\"\n"),
            "broker.toml:9:9: permissions[0].write: invalid regex",
            "unclosed group",
        );
    }

    #[test]
    fn errors_expose_their_problem() {
        let err = Config::parse("[limits]\nframe_max = 1\n", "b").unwrap_err();
        assert!(matches!(
            err.problem(),
            Some(super::Problem::TooSmall { min: 4096, got: 1 })
        ));
    }
}
