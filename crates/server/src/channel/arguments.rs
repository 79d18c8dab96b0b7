//! Queue arguments checked before a queue exists: its type.
//!
//! RabbitMQ keeps arguments it does not know, and so does warren; the arguments that
//! change a queue's behaviour are read by `queue::Settings`. Only the classic queue
//! type exists: a quorum or stream queue is refused with 540 rather than silently
//! created as something else.

use warren_codec::{FieldTable, FieldValue};

use crate::error::ConnectionError;

/// Refuses queue types other than classic (540).
pub(crate) fn check_queue(arguments: &FieldTable) -> Result<(), ConnectionError> {
    match arguments.get("x-queue-type") {
        Some(value) if value.as_str() != Some("classic") => {
            Err(ConnectionError::not_implemented(format!(
                "queue type {} is not supported; only classic",
                describe(value)
            )))
        }
        _ => Ok(()),
    }
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
    fn only_classic_queues_exist() {
        let mut args = FieldTable::new();
        args.insert("x-custom", 1);
        assert!(check_queue(&args).is_ok());
        args.insert("x-queue-type", "classic");
        assert!(check_queue(&args).is_ok());
        let mut quorum = FieldTable::new();
        quorum.insert("x-queue-type", "quorum");
        assert_eq!(check_queue(&quorum).map_err(|e| e.code().code()), Err(540));
    }
}
