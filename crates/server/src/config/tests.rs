//! Tests of the server settings, users, vhosts and permissions, and of the shipped
//! `broker.toml` and `default.toml`.

#![allow(clippy::unwrap_used)]

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

/// The repository's broker.toml, as shipped.
const EXAMPLE: &str = include_str!("../../../../broker.toml");

#[test]
fn example_broker_toml_parses_to_the_built_in_default() {
    let config = Config::parse(EXAMPLE, "broker.toml").unwrap();
    assert_eq!(config.limits, Limits::default());
    assert_eq!(config.users.len(), 1);
    assert!(config.users[0].loopback_only);
    assert!(verify_password(&config.users[0].password_hash, b"guest"));
    assert_eq!(config.vhosts[0].name, "/");
    let perms = &config.permissions[0].permissions;
    assert!(perms.can_configure("q") && perms.can_write("x") && perms.can_read("q"));
    // The example topology is commented out: the file means the built-in default.
    assert!(config.exchanges.is_empty() && config.queues.is_empty());
    assert!(config.bindings.is_empty() && config.policies.is_empty());
}

#[test]
fn example_topology_in_broker_toml_parses_once_uncommented() {
    // Example lines are commented with "#" and no space; documentation with "# ".
    let uncommented: String = EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#', '-']) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = Config::parse(&uncommented, "broker.toml").unwrap();
    let names = |names: Vec<&str>| names.join(" ");
    assert_eq!(
        names(config.exchanges.iter().map(|e| e.name.as_str()).collect()),
        "orders orders.unrouted dlx"
    );
    assert_eq!(
        names(config.queues.iter().map(|q| q.name.as_str()).collect()),
        "orders.created orders.unrouted dead-letters"
    );
    assert_eq!(config.bindings.len(), 3);
    let policies = crate::policy::Policies::for_vhost(&config.policies, "/");
    let resolved = policies.resolve("orders.created").definition;
    assert_eq!(resolved.max_length, Some(100_000));
    assert_eq!(resolved.message_ttl, Some(86_400_000));
    assert_eq!(policies.matching("dead-letters").count(), 0);
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
