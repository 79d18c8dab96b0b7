//! Connection options and the AMQP URI they are usually parsed from.
//!
//! `amqp://user:pass@host:port/vhost?heartbeat=10&frame_max=131072&channel_max=64&connection_timeout=5000`
//!
//! Every part is optional: user and password default to `guest`, the host to
//! `localhost`, the port to 5672 and the vhost to `/`. User, password, host and vhost
//! are percent-decoded, so the vhost `/` is written `%2f` and a `@` in a password `%40`.
//!
//! Deviation from RabbitMQ's URI spec: that spec reads `amqp://host/` (an empty path
//! segment) as the empty vhost; here it means the default vhost `/`, as in pika and
//! most other clients, since nobody names a vhost "".

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use warren_codec::FRAME_MIN_SIZE;

use crate::error::Error;
use crate::recovery::Recovery;

/// The port an `amqp://` URI without one connects to.
pub const DEFAULT_PORT: u16 = 5672;

/// How long connecting (TCP and handshake) and closing may take unless the URI's
/// `connection_timeout` says otherwise.
pub const DEFAULT_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to connect.
///
/// Parse one from a URI with [`ConnectOptions::from_uri`] (or `str::parse`), then
/// adjust fields or name the connection:
///
/// ```
/// use warren_client::ConnectOptions;
///
/// let options = ConnectOptions::from_uri("amqp://app:s%40cret@broker:5673/%2f?heartbeat=10")?
///     .connection_name("billing-worker");
/// assert_eq!(options.password, "s@cret");
/// assert_eq!(options.vhost, "/");
/// assert_eq!(options.heartbeat, Some(10));
/// # Ok::<(), warren_client::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Host name or IP address (without brackets for IPv6).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name for PLAIN authentication.
    pub username: String,
    /// Password for PLAIN authentication.
    pub password: String,
    /// Virtual host to open.
    pub vhost: String,
    /// Heartbeat interval in seconds: `None` takes the server's, `Some(0)` disables
    /// heartbeats, `Some(n)` asks for at most `n` (the server's value if it is lower).
    pub heartbeat: Option<u16>,
    /// Largest frame in bytes: `None` or `Some(0)` takes the server's, otherwise the
    /// lower of the two. At least 4096.
    pub frame_max: Option<u32>,
    /// Most channels: `None` or `Some(0)` takes the server's, otherwise the lower.
    pub channel_max: Option<u16>,
    /// Bound on connecting (TCP connect plus handshake) and on closing.
    pub connection_timeout: Duration,
    /// A name for the connection, shown by the broker's management tools.
    pub connection_name: Option<String>,
    /// Automatic recovery after a lost connection; `None` (the default) lets the
    /// connection close instead. See [`Recovery`].
    pub recovery: Option<Recovery>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            host: "localhost".to_owned(),
            port: DEFAULT_PORT,
            username: "guest".to_owned(),
            password: "guest".to_owned(),
            vhost: "/".to_owned(),
            heartbeat: None,
            frame_max: None,
            channel_max: None,
            connection_timeout: DEFAULT_CONNECTION_TIMEOUT,
            connection_name: None,
            recovery: None,
        }
    }
}

/// The password stays out of logs.
impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("vhost", &self.vhost)
            .field("heartbeat", &self.heartbeat)
            .field("frame_max", &self.frame_max)
            .field("channel_max", &self.channel_max)
            .field("connection_timeout", &self.connection_timeout)
            .field("connection_name", &self.connection_name)
            .field("recovery", &self.recovery)
            .finish()
    }
}

impl ConnectOptions {
    /// Parses an `amqp://` URI.
    ///
    /// Fails with [`Error::InvalidUri`] for another scheme (`amqps` is not supported
    /// yet), a bad port or percent-escape, a vhost with an unescaped `/`, a fragment,
    /// or an unknown or malformed query option.
    pub fn from_uri(uri: &str) -> Result<ConnectOptions, Error> {
        parse(uri)
    }

    /// Names the connection (sent as the `connection_name` client property).
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// Turns on automatic recovery (see [`Recovery`]).
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = Some(recovery);
        self
    }

    /// `host:port`, with brackets around an IPv6 address, for `TcpStream::connect`.
    pub(crate) fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for ConnectOptions {
    type Err = Error;

    fn from_str(uri: &str) -> Result<Self, Error> {
        parse(uri)
    }
}

fn invalid(what: impl Into<String>) -> Error {
    Error::InvalidUri(what.into())
}

fn parse(uri: &str) -> Result<ConnectOptions, Error> {
    let mut options = ConnectOptions::default();
    let (scheme, rest) = uri
        .split_once("://")
        .ok_or_else(|| invalid(format!("'{uri}' does not start with amqp://")))?;
    match scheme.to_ascii_lowercase().as_str() {
        "amqp" => {}
        "amqps" => return Err(invalid("amqps (TLS) is not supported yet")),
        other => return Err(invalid(format!("unknown scheme '{other}'"))),
    }
    if rest.contains('#') {
        return Err(invalid("a fragment (#...) is not allowed"));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    // The last '@' ends the user info: an unescaped '@' in a password is common enough.
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            options.username = percent_decode(user)?;
            if let Some(password) = password {
                options.password = percent_decode(password)?;
            }
            host_port
        }
        None => authority,
    };
    parse_host_port(host_port, &mut options)?;
    if let Some(path) = path
        && !path.is_empty()
    {
        if path.contains('/') {
            return Err(invalid(format!(
                "vhost '{path}' has more than one path segment (write '/' as %2f)"
            )));
        }
        options.vhost = percent_decode(path)?;
    }
    if let Some(query) = query {
        parse_query(query, &mut options)?;
    }
    Ok(options)
}

fn parse_host_port(host_port: &str, options: &mut ConnectOptions) -> Result<(), Error> {
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid("IPv6 address without a closing ']'"))?;
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| invalid(format!("unexpected '{after}' after ']'")))?,
            ),
        };
        (host.to_owned(), port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (percent_decode(host)?, Some(port)),
            None => (percent_decode(host_port)?, None),
        }
    };
    if !host.is_empty() {
        options.host = host;
    }
    if let Some(port) = port
        && !port.is_empty()
    {
        options.port = port
            .parse()
            .map_err(|_| invalid(format!("port '{port}' is not a number from 0 to 65535")))?;
    }
    Ok(())
}

fn parse_query(query: &str, options: &mut ConnectOptions) -> Result<(), Error> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| invalid(format!("query option '{pair}' has no value")))?;
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        match key.as_str() {
            "heartbeat" => options.heartbeat = Some(number(&key, &value)?),
            "channel_max" => options.channel_max = Some(number(&key, &value)?),
            "frame_max" => {
                let frame_max: u32 = number(&key, &value)?;
                if frame_max != 0 && frame_max < FRAME_MIN_SIZE {
                    return Err(invalid(format!(
                        "frame_max {frame_max} is below the minimum {FRAME_MIN_SIZE}"
                    )));
                }
                options.frame_max = Some(frame_max);
            }
            "connection_timeout" => {
                options.connection_timeout = Duration::from_millis(number(&key, &value)?)
            }
            other => return Err(invalid(format!("unknown query option '{other}'"))),
        }
    }
    Ok(())
}

fn number<T: FromStr>(key: &str, value: &str) -> Result<T, Error> {
    value
        .parse()
        .map_err(|_| invalid(format!("{key}={value} is not a number in range")))
}

/// Decodes `%XX` escapes; the result must be UTF-8. `+` stays `+` (it means a space
/// only in form encoding, not in URIs).
fn percent_decode(s: &str) -> Result<String, Error> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(format!("bad percent-escape in '{s}'")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(format!("'{s}' does not decode to UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(uri: &str) -> ConnectOptions {
        match ConnectOptions::from_uri(uri) {
            Ok(options) => options,
            Err(e) => unreachable!("{uri}: {e}"),
        }
    }

    fn refused(uri: &str) -> String {
        match ConnectOptions::from_uri(uri) {
            Err(Error::InvalidUri(why)) => why,
            other => unreachable!("{uri}: expected InvalidUri, got {other:?}"),
        }
    }

    #[test]
    fn bare_scheme_takes_every_default() {
        assert_eq!(parsed("amqp://"), ConnectOptions::default());
        assert_eq!(parsed("amqp://localhost"), ConnectOptions::default());
        assert_eq!(parsed("amqp://localhost/"), ConnectOptions::default());
    }

    #[test]
    fn every_part_is_read() {
        let o = parsed("amqp://alice:pw@rabbit.local:5673/prod");
        assert_eq!((o.username.as_str(), o.password.as_str()), ("alice", "pw"));
        assert_eq!((o.host.as_str(), o.port), ("rabbit.local", 5673));
        assert_eq!(o.vhost, "prod");
        assert_eq!(o.address(), "rabbit.local:5673");
    }

    #[test]
    fn percent_escapes_are_decoded() {
        let o = parsed("amqp://us%65r:p%40ss%3Aw%2Frd@host/%2f");
        assert_eq!(o.username, "user");
        assert_eq!(o.password, "p@ss:w/rd");
        assert_eq!(o.vhost, "/");
        assert_eq!(parsed("amqp://h/a%2Fb%20c").vhost, "a/b c");
        assert_eq!(parsed("amqp://h/caf%C3%A9").vhost, "café");
        assert_eq!(parsed("amqp://u:a+b@h").password, "a+b");
    }

    #[test]
    fn user_without_password_keeps_the_default_password() {
        let o = parsed("amqp://bob@h");
        assert_eq!((o.username.as_str(), o.password.as_str()), ("bob", "guest"));
        assert_eq!(parsed("amqp://bob:@h").password, "");
    }

    #[test]
    fn unescaped_at_in_password_splits_at_the_last_at() {
        assert_eq!(parsed("amqp://u:p@ss@h").password, "p@ss");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let o = parsed("amqp://[::1]:5680/v");
        assert_eq!((o.host.as_str(), o.port), ("::1", 5680));
        assert_eq!(o.address(), "[::1]:5680");
        assert_eq!(parsed("amqp://[fe80::2]").port, DEFAULT_PORT);
    }

    #[test]
    fn empty_host_or_port_take_defaults() {
        let o = parsed("amqp://u:p@:/v");
        assert_eq!((o.host.as_str(), o.port), ("localhost", DEFAULT_PORT));
    }

    #[test]
    fn query_options_are_read() {
        let o =
            parsed("amqp://h?heartbeat=10&frame_max=8192&channel_max=32&connection_timeout=2500");
        assert_eq!(o.heartbeat, Some(10));
        assert_eq!(o.frame_max, Some(8192));
        assert_eq!(o.channel_max, Some(32));
        assert_eq!(o.connection_timeout, Duration::from_millis(2500));
        assert_eq!(parsed("amqp://h/?heartbeat=0").heartbeat, Some(0));
        assert_eq!(parsed("amqp://h/v?frame_max=0").frame_max, Some(0));
        assert_eq!(parsed("amqp://h/v?").heartbeat, None);
    }

    #[test]
    fn bad_uris_are_refused() {
        assert!(refused("http://h").contains("scheme"));
        assert!(refused("amqps://h").contains("not supported"));
        assert!(refused("localhost:5672").contains("amqp://"));
        assert!(refused("amqp://h:99999").contains("port"));
        assert!(refused("amqp://h:abc").contains("port"));
        assert!(refused("amqp://h/a/b").contains("%2f"));
        assert!(refused("amqp://h/%2").contains("percent"));
        assert!(refused("amqp://h/%zz").contains("percent"));
        assert!(refused("amqp://h/%ff").contains("UTF-8"));
        assert!(refused("amqp://h#frag").contains("fragment"));
        assert!(refused("amqp://[::1/v").contains("']'"));
        assert!(refused("amqp://[::1]x/v").contains("after"));
    }

    #[test]
    fn bad_query_options_are_refused() {
        assert!(refused("amqp://h?heartbeat=-1").contains("heartbeat"));
        assert!(refused("amqp://h?heartbeat=70000").contains("heartbeat"));
        assert!(refused("amqp://h?channel_max=x").contains("channel_max"));
        assert!(refused("amqp://h?frame_max=100").contains("minimum"));
        assert!(refused("amqp://h?heartbeat").contains("no value"));
        assert!(refused("amqp://h?verify=none").contains("unknown"));
    }

    #[test]
    fn scheme_is_case_insensitive_and_parse_works() {
        let o: Result<ConnectOptions, _> = "AMQP://h".parse();
        assert_eq!(o.ok().map(|o| o.host), Some("h".to_owned()));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let shown = format!("{:?}", parsed("amqp://u:hunter2@h"));
        assert!(!shown.contains("hunter2"));
    }
}
