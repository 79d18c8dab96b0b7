//! Durable definitions as store keys and values: exchanges, queues and bindings, per
//! vhost. Names are length-prefixed (AMQP short strings, up to 255 bytes), arguments
//! are AMQP field tables, so any name and any argument round-trips.

use bytes::{BufMut, Bytes, BytesMut};
use warren_codec::FieldTable;
use warren_routing::{Destination, ExchangeKind, ExchangeSpec};

const EXCHANGE: u8 = b'x';
const QUEUE: u8 = b'q';
const BINDING: u8 = b'b';

/// A durable queue as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredQueue {
    pub(crate) vhost: String,
    pub(crate) name: String,
    /// Its id in the message store.
    pub(crate) id: u32,
    pub(crate) auto_delete: bool,
    pub(crate) arguments: FieldTable,
}

/// A durable binding as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredBinding {
    pub(crate) vhost: String,
    pub(crate) source: String,
    pub(crate) destination: Destination,
    pub(crate) routing_key: String,
    pub(crate) arguments: FieldTable,
}

/// One definition read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Definition {
    Exchange(String, ExchangeSpec),
    Queue(StoredQueue),
    Binding(StoredBinding),
}

fn short(buf: &mut BytesMut, s: &str) {
    // Names and routing keys are AMQP short strings: at most 255 bytes.
    let bytes = &s.as_bytes()[..s.len().min(255)];
    buf.put_u8(bytes.len() as u8);
    buf.put_slice(bytes);
}

pub(crate) fn exchange_key(vhost: &str, name: &str) -> Bytes {
    let mut key = BytesMut::new();
    key.put_u8(EXCHANGE);
    short(&mut key, vhost);
    short(&mut key, name);
    key.freeze()
}

pub(crate) fn exchange_value(spec: &ExchangeSpec) -> Bytes {
    let mut value = BytesMut::new();
    short(&mut value, spec.kind.name());
    value.put_u8(u8::from(spec.auto_delete) | u8::from(spec.internal) << 1);
    spec.arguments.encode(&mut value);
    value.freeze()
}

pub(crate) fn queue_key(vhost: &str, name: &str) -> Bytes {
    let mut key = BytesMut::new();
    key.put_u8(QUEUE);
    short(&mut key, vhost);
    short(&mut key, name);
    key.freeze()
}

pub(crate) fn queue_value(id: u32, auto_delete: bool, arguments: &FieldTable) -> Bytes {
    let mut value = BytesMut::new();
    value.put_u32_le(id);
    value.put_u8(u8::from(auto_delete));
    arguments.encode(&mut value);
    value.freeze()
}

pub(crate) fn binding_key(
    vhost: &str,
    source: &str,
    destination: &Destination,
    routing_key: &str,
    arguments: &FieldTable,
) -> Bytes {
    let mut key = BytesMut::new();
    key.put_u8(BINDING);
    short(&mut key, vhost);
    short(&mut key, source);
    match destination {
        Destination::Queue(q) => {
            key.put_u8(QUEUE);
            short(&mut key, q);
        }
        Destination::Exchange(x) => {
            key.put_u8(EXCHANGE);
            short(&mut key, x);
        }
    }
    short(&mut key, routing_key);
    // Argument order does not make bindings differ: one key for any order.
    let mut arguments = arguments.clone();
    arguments.sort_keys();
    arguments.encode(&mut key);
    key.freeze()
}

/// Reads a stored key and value back; None for bytes this version does not know.
pub(crate) fn decode(key: &Bytes, value: &Bytes) -> Option<Definition> {
    let mut k = Reader(key.clone());
    let mut v = Reader(value.clone());
    let definition = match k.u8()? {
        EXCHANGE => {
            let vhost = k.short()?;
            let name = k.short()?;
            let kind = ExchangeKind::parse(&v.short()?)?;
            let flags = v.u8()?;
            let mut spec = ExchangeSpec::new(&name, kind);
            spec.durable = true;
            spec.auto_delete = flags & 1 != 0;
            spec.internal = flags & 2 != 0;
            spec.arguments = v.table()?;
            Definition::Exchange(vhost, spec)
        }
        QUEUE => Definition::Queue(StoredQueue {
            vhost: k.short()?,
            name: k.short()?,
            id: v.u32()?,
            auto_delete: v.u8()? & 1 != 0,
            arguments: v.table()?,
        }),
        BINDING => {
            let vhost = k.short()?;
            let source = k.short()?;
            let destination = match k.u8()? {
                QUEUE => Destination::Queue(k.short()?.into()),
                EXCHANGE => Destination::Exchange(k.short()?.into()),
                _ => return None,
            };
            Definition::Binding(StoredBinding {
                vhost,
                source,
                destination,
                routing_key: k.short()?,
                arguments: k.table()?,
            })
        }
        _ => return None,
    };
    Some(definition)
}

struct Reader(Bytes);

impl Reader {
    fn take(&mut self, n: usize) -> Option<Bytes> {
        (self.0.len() >= n).then(|| self.0.split_to(n))
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn short(&mut self) -> Option<String> {
        let len = self.u8()?;
        String::from_utf8(self.take(usize::from(len))?.to_vec()).ok()
    }
    fn table(&mut self) -> Option<FieldTable> {
        let b = self.take(4)?;
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        FieldTable::decode_entries(&self.take(len)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_round_trip() {
        let mut args = FieldTable::new();
        args.insert("x-message-ttl", 5i32);
        let mut spec = ExchangeSpec::new("logs", ExchangeKind::Topic);
        spec.durable = true;
        spec.internal = true;
        spec.arguments = args.clone();
        assert_eq!(
            decode(&exchange_key("/", "logs"), &exchange_value(&spec)),
            Some(Definition::Exchange("/".into(), spec))
        );
        assert_eq!(
            decode(&queue_key("v", "q"), &queue_value(9, true, &args)),
            Some(Definition::Queue(StoredQueue {
                vhost: "v".into(),
                name: "q".into(),
                id: 9,
                auto_delete: true,
                arguments: args.clone(),
            }))
        );
        let destination = Destination::Exchange("e2".into());
        assert_eq!(
            decode(
                &binding_key("/", "logs", &destination, "a.#", &args),
                &Bytes::new()
            ),
            Some(Definition::Binding(StoredBinding {
                vhost: "/".into(),
                source: "logs".into(),
                destination,
                routing_key: "a.#".into(),
                arguments: args,
            }))
        );
        assert_eq!(decode(&Bytes::from_static(b"z"), &Bytes::new()), None);
    }
}
