//! Names: the reserved `amq.` prefix and server-generated names.

use base64::Engine;
use warren_codec::ShortStr;

use crate::error::ChannelError;

/// Names starting with `amq.` belong to the broker.
pub(crate) fn is_reserved(name: &str) -> bool {
    name.starts_with("amq.")
}

/// The 403 for declaring a reserved name.
pub(crate) fn reserved(kind: &str, name: &str) -> ChannelError {
    ChannelError::access_refused(format!(
        "{kind} name '{name}' contains reserved prefix 'amq.*'"
    ))
}

/// A fresh name like RabbitMQ's: `amq.gen-` or `amq.ctag-` and 22 random URL-safe
/// characters.
pub(crate) fn generated(prefix: &str) -> ShortStr {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to a process-unique counter and the clock,
        // which is still unique, just guessable.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[8..].copy_from_slice(&t.to_be_bytes());
    }
    let suffix = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    ShortStr::from(format!("{prefix}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_unique_and_prefixed() {
        let a = generated("amq.gen-");
        let b = generated("amq.gen-");
        assert_ne!(a, b);
        assert!(a.starts_with("amq.gen-"));
        assert_eq!(a.len(), "amq.gen-".len() + 22);
    }
}
