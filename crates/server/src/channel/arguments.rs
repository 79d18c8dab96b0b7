//! Queue arguments warren does not act on yet.
//!
//! RabbitMQ keeps arguments it does not know, and so does warren. But an argument
//! that names a RabbitMQ feature warren has not implemented yet (a TTL, a length
//! limit, dead-lettering) is refused with 540 rather than accepted and ignored: a queue
//! that silently does not expire or limit would lose the guarantee its declarer relied
//! on.

use warren_codec::{FieldTable, FieldValue};

use crate::error::ConnectionError;

/// RabbitMQ queue arguments whose behaviour is not implemented yet.
const NOT_YET: [&str; 10] = [
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-overflow",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-priority",
    "x-delivery-limit",
    "x-single-active-consumer",
];

/// Refuses arguments for features not implemented yet (540), and queue types other
/// than classic.
pub(crate) fn check_queue(arguments: &FieldTable) -> Result<(), ConnectionError> {
    for (key, value) in arguments.iter() {
        if NOT_YET.contains(&key.as_str()) {
            return Err(ConnectionError::not_implemented(format!(
                "queue argument '{key}' is not supported yet"
            )));
        }
        if key == "x-queue-type" && value.as_str() != Some("classic") {
            return Err(ConnectionError::not_implemented(format!(
                "queue type {} is not supported; only classic",
                describe(value)
            )));
        }
    }
    Ok(())
}

fn describe(value: &FieldValue) -> String {
    value
        .as_str()
        .map_or_else(|| format!("{value:?}"), |s| format!("'{s}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_arguments_pass_and_unimplemented_features_are_refused() {
        let mut args = FieldTable::new();
        args.insert("x-custom", 1);
        args.insert("x-queue-type", "classic");
        assert!(check_queue(&args).is_ok());
        args.insert("x-message-ttl", 1000);
        assert_eq!(check_queue(&args).map_err(|e| e.code().code()), Err(540));
        let mut quorum = FieldTable::new();
        quorum.insert("x-queue-type", "quorum");
        assert!(check_queue(&quorum).is_err());
    }
}
