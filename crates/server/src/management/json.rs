//! AMQP field tables as JSON, as RabbitMQ's management API shows queue arguments.

use serde_json::{Map, Value};
use warren_codec::{BasicProperties, FieldTable, FieldValue};

/// A field table as RabbitMQ's management API shows it (`arguments` of queues,
/// exchanges and bindings).
pub fn table(table: &FieldTable) -> Value {
    Value::Object(
        table
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value(v)))
            .collect::<Map<_, _>>(),
    )
}

/// Message properties as RabbitMQ's `/get` shows them: only those set.
pub(super) fn properties(p: &BasicProperties) -> Value {
    let mut out = Map::new();
    let mut text = |key: &str, v: &Option<warren_codec::ShortStr>| {
        if let Some(v) = v {
            out.insert(key.to_owned(), Value::String(v.as_str().to_owned()));
        }
    };
    text("content_type", &p.content_type);
    text("content_encoding", &p.content_encoding);
    text("correlation_id", &p.correlation_id);
    text("reply_to", &p.reply_to);
    text("expiration", &p.expiration);
    text("message_id", &p.message_id);
    text("type", &p.kind);
    text("user_id", &p.user_id);
    text("app_id", &p.app_id);
    if let Some(headers) = &p.headers {
        out.insert("headers".into(), table(headers));
    }
    if let Some(mode) = p.delivery_mode {
        out.insert("delivery_mode".into(), mode.into());
    }
    if let Some(priority) = p.priority {
        out.insert("priority".into(), priority.into());
    }
    if let Some(timestamp) = p.timestamp {
        out.insert("timestamp".into(), timestamp.into());
    }
    Value::Object(out)
}

pub(super) fn value(v: &FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Bool(*b),
        FieldValue::I8(n) => (*n).into(),
        FieldValue::U8(n) => (*n).into(),
        FieldValue::I16(n) => (*n).into(),
        FieldValue::U16(n) => (*n).into(),
        FieldValue::I32(n) => (*n).into(),
        FieldValue::U32(n) => (*n).into(),
        FieldValue::I64(n) => (*n).into(),
        FieldValue::Timestamp(n) => (*n).into(),
        FieldValue::F32(f) => f64::from(*f).into(),
        FieldValue::F64(f) => (*f).into(),
        FieldValue::Decimal { scale, value } => {
            (f64::from(*value) / 10f64.powi(i32::from(*scale))).into()
        }
        FieldValue::LongStr(b) | FieldValue::Bytes(b) => {
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        FieldValue::Array(items) => Value::Array(items.iter().map(value).collect()),
        FieldValue::Table(t) => table(t),
        FieldValue::Void => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_as_rabbitmq_shows_them() {
        let mut nested = FieldTable::new();
        nested.insert("x", true);
        let mut args = FieldTable::new();
        args.insert("x-max-length", 10i64);
        args.insert("x-dead-letter-exchange", "dlx");
        args.insert("nested", nested);
        args.insert("list", FieldValue::Array(vec![1i32.into(), "a".into()]));
        assert_eq!(
            table(&args),
            serde_json::json!({
                "x-max-length": 10,
                "x-dead-letter-exchange": "dlx",
                "nested": {"x": true},
                "list": [1, "a"],
            })
        );
    }
}
