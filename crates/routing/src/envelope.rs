//! What routing reads from a message: its routing key, the extra keys of
//! sender-selected distribution (the `CC` and `BCC` headers), and its headers.

use std::cell::OnceCell;

use warren_codec::{FieldTable, FieldValue};

use crate::error::RoutingError;
use crate::headers::MessageHeaders;

/// The headers that add routing keys (RabbitMQ's sender-selected distribution).
const ROUTING_HEADERS: [&str; 2] = ["CC", "BCC"];

/// A message as routing sees it. Built once per publish and routed through every
/// exchange the message passes.
#[derive(Debug)]
pub struct Envelope<'a> {
    routing_key: &'a str,
    /// Keys from `CC` and `BCC`.
    extra_keys: Vec<&'a str>,
    /// The message has a `BCC` header, which must not be delivered.
    has_bcc: bool,
    headers: Option<&'a FieldTable>,
    /// Headers prepared for headers exchanges, on first need: most messages never
    /// meet one.
    prepared: OnceCell<MessageHeaders<'a>>,
}

impl<'a> Envelope<'a> {
    /// A message with `routing_key` and these headers. `CC` and `BCC` must be arrays
    /// (of long strings; other elements are ignored), as RabbitMQ requires; any other
    /// type is [`RoutingError::RoutingHeader`].
    pub fn new(
        routing_key: &'a str,
        headers: Option<&'a FieldTable>,
    ) -> Result<Self, RoutingError> {
        let mut extra_keys = Vec::new();
        for name in ROUTING_HEADERS {
            match headers.and_then(|h| h.get(name)) {
                None => {}
                Some(FieldValue::Array(values)) => {
                    extra_keys.extend(values.iter().filter_map(|v| match v {
                        FieldValue::LongStr(s) => std::str::from_utf8(s).ok(),
                        _ => None,
                    }));
                }
                Some(other) => {
                    return Err(RoutingError::RoutingHeader {
                        header: name,
                        type_letter: char::from(other.type_letter()),
                    });
                }
            }
        }
        Ok(Envelope {
            routing_key,
            extra_keys,
            has_bcc: headers.is_some_and(|h| h.get("BCC").is_some()),
            headers,
            prepared: OnceCell::new(),
        })
    }

    /// Whether the message has a `BCC` header: it routes, but recipients must not see it.
    pub fn has_bcc(&self) -> bool {
        self.has_bcc
    }

    /// The routing key the message was published with.
    pub fn routing_key(&self) -> &'a str {
        self.routing_key
    }

    /// Every key the message routes by: its routing key, then those from `CC` and `BCC`.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> + '_ {
        std::iter::once(self.routing_key).chain(self.extra_keys.iter().copied())
    }

    pub(crate) fn headers(&self) -> &MessageHeaders<'a> {
        self.prepared
            .get_or_init(|| MessageHeaders::new(self.headers))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn array(keys: &[&str]) -> FieldValue {
        FieldValue::Array(keys.iter().map(|k| FieldValue::string(*k)).collect())
    }

    #[test]
    fn cc_and_bcc_add_keys_after_the_routing_key() {
        let mut headers = FieldTable::new();
        headers.insert("CC", array(&["b", "c"]));
        headers.insert("BCC", array(&["d"]));
        let envelope = Envelope::new("a", Some(&headers)).unwrap();
        assert_eq!(envelope.keys().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert!(envelope.has_bcc());
        assert!(!Envelope::new("a", None).unwrap().has_bcc());
    }

    #[test]
    fn non_string_elements_are_ignored() {
        let mut headers = FieldTable::new();
        headers.insert(
            "CC",
            FieldValue::Array(vec![FieldValue::I32(1), FieldValue::string("b")]),
        );
        let envelope = Envelope::new("a", Some(&headers)).unwrap();
        assert_eq!(envelope.keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_cc_that_is_not_an_array_is_refused() {
        let mut headers = FieldTable::new();
        headers.insert("CC", FieldValue::string("b"));
        assert_eq!(
            Envelope::new("a", Some(&headers)).map(|_| ()),
            Err(RoutingError::RoutingHeader {
                header: "CC",
                type_letter: 'S'
            })
        );
    }

    #[test]
    fn lowercase_cc_is_an_ordinary_header() {
        let mut headers = FieldTable::new();
        headers.insert("cc", FieldValue::string("b"));
        let envelope = Envelope::new("a", Some(&headers)).unwrap();
        assert_eq!(envelope.keys().collect::<Vec<_>>(), ["a"]);
    }
}
