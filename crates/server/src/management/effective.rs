//! The settings in force on a queue, key by key, and where each came from: its
//! declare arguments or a policy, weighed as `Settings::with_policy` weighs them.

use serde_json::{Map, Value};
use warren_codec::FieldTable;

use super::json;
use crate::policy::{PolicyKey, Resolved};

/// The settings in force under RabbitMQ's policy key names, and for each its source
/// (`argument x-max-length` or `policy NAME`).
pub(super) fn effective(
    arguments: &FieldTable,
    policy: &Resolved,
    definition: &Value,
) -> (Map<String, Value>, Map<String, Value>) {
    let (mut settings, mut sources) = (Map::new(), Map::new());
    for key in PolicyKey::ALL {
        let name = key.rabbitmq_name();
        let argument = arguments.get(key.argument()).map(json::value);
        let from_policy = definition.get(name).cloned().and_then(|value| {
            let (_, source) = policy.sources.iter().find(|(k, _)| *k == key)?;
            Some((value, source.clone()))
        });
        let chosen = match (argument, from_policy) {
            (Some(a), Some((p, source))) if key.lower_wins() && lower(&p, &a) => {
                Some((p, format!("policy {source}")))
            }
            (Some(a), _) => Some((a, format!("argument {}", key.argument()))),
            (None, Some((p, source))) => Some((p, format!("policy {source}"))),
            (None, None) => None,
        };
        if let Some((value, source)) = chosen {
            settings.insert(name.to_owned(), value);
            sources.insert(name.to_owned(), Value::String(source));
        }
    }
    (settings, sources)
}

/// `a < b` as numbers.
fn lower(a: &Value, b: &Value) -> bool {
    matches!((a.as_f64(), b.as_f64()), (Some(a), Some(b)) if a < b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDefinition;
    use serde_json::json;

    #[test]
    fn limits_take_the_lower_value_and_arguments_win_otherwise() {
        let mut arguments = FieldTable::new();
        arguments.insert("x-max-length", 100i64);
        arguments.insert("x-message-ttl", 5000i64);
        arguments.insert("x-dead-letter-exchange", "mine");
        let policy = Resolved {
            definition: PolicyDefinition::default(),
            sources: vec![
                (PolicyKey::MaxLength, "limits".into()),
                (PolicyKey::MessageTtl, "limits".into()),
                (PolicyKey::DeadLetterExchange, "dlx".into()),
                (PolicyKey::DeliveryLimit, "dlx".into()),
            ],
            policies: vec!["limits".into(), "dlx".into()],
        };
        let definition = json!({
            "max-length": 10, "message-ttl": 60000, "dead-letter-exchange": "theirs",
            "delivery-limit": 3,
        });
        let (settings, sources) = effective(&arguments, &policy, &definition);
        assert_eq!(
            Value::Object(settings),
            json!({"max-length": 10, "message-ttl": 5000, "dead-letter-exchange": "mine",
                   "delivery-limit": 3})
        );
        assert_eq!(
            Value::Object(sources),
            json!({"max-length": "policy limits", "message-ttl": "argument x-message-ttl",
                   "dead-letter-exchange": "argument x-dead-letter-exchange",
                   "delivery-limit": "policy dlx"})
        );
    }
}
