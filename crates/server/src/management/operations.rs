//! What the management API changes: delete and purge a queue, delete an exchange (as
//! RabbitMQ's API), read a queue's first messages (`POST .../get`), and warren's
//! redrive of a dead-letter queue (`POST .../redrive`). Each needs the user's vhost
//! permission on the resource, as the same operation over AMQP would.

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warren_codec::ReplyCode;
use warren_routing::Destination;

use super::json;
use crate::auth::Permissions;
use crate::broker::Broker;
use crate::connection::events::OPERATOR;
use crate::error::ChannelError;
use crate::message::Message;
use crate::names;
use crate::queue::{Command, Peeked, QueueHandle, Redriven, Settle};
use crate::vhost::Vhost;

/// At most this many messages per `get`.
const GET_MAX: usize = 10_000;
/// Messages a redrive looks at per round; between rounds the queue serves its
/// consumers and publishers.
const REDRIVE_ROUND: usize = 1_000;

/// A failed operation: HTTP status and reason.
pub(super) struct Refused {
    pub(super) status: u16,
    pub(super) reason: String,
}

impl Refused {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Refused {
            status,
            reason: reason.into(),
        }
    }
}

impl From<ChannelError> for Refused {
    /// The AMQP reply code as RabbitMQ's API maps it: 404 and 403 stay, the rest
    /// (precondition failed, locked) is a bad request.
    fn from(e: ChannelError) -> Self {
        let status = match e.code() {
            ReplyCode::NotFound => 404,
            ReplyCode::AccessRefused => 403,
            _ => 400,
        };
        Refused::new(status, e.0.text())
    }
}

/// What a request names, and who asks.
pub(super) struct Target<'a> {
    pub(super) broker: &'a Broker,
    pub(super) user: &'a str,
    pub(super) vhost: &'a str,
    pub(super) name: &'a str,
}

impl Target<'_> {
    fn vhost(&self) -> Result<std::sync::Arc<Vhost>, Refused> {
        self.broker
            .vhost(self.vhost)
            .ok_or_else(|| Refused::new(404, format!("no vhost '{}'", self.vhost)))
    }

    fn permit(&self, what: &str, allowed: fn(&Permissions, &str) -> bool) -> Result<(), Refused> {
        let users = self.broker.users();
        if users
            .permissions(self.user, self.vhost)
            .is_some_and(|p| allowed(p, self.name))
        {
            return Ok(());
        }
        Err(Refused::new(
            403,
            format!(
                "access to {what} '{}' in vhost '{}' refused for user '{}'",
                self.name, self.vhost, self.user
            ),
        ))
    }

    fn queue(&self) -> Result<QueueHandle, Refused> {
        Ok(self.vhost()?.queue(self.name)?)
    }

    fn gone(&self) -> Refused {
        Refused::new(
            404,
            format!("no queue '{}' in vhost '{}'", self.name, self.vhost),
        )
    }
}

/// `DELETE /api/queues/{vhost}/{name}[?if-empty=true&if-unused=true]`.
pub(super) async fn delete_queue(t: &Target<'_>, query: &str) -> Result<Value, Refused> {
    t.permit("queue", Permissions::can_configure)?;
    let queue = t.queue()?;
    let (if_empty, if_unused) = (flag(query, "if-empty"), flag(query, "if-unused"));
    let messages = queue
        .ask(|reply| Command::Delete {
            if_unused,
            if_empty,
            reply,
        })
        .await
        .unwrap_or(Ok(0))?;
    Ok(json!({ "message_count": messages }))
}

/// `DELETE /api/queues/{vhost}/{name}/contents`.
pub(super) async fn purge(t: &Target<'_>) -> Result<Value, Refused> {
    t.permit("queue", Permissions::can_read)?;
    let queue = t.queue()?;
    let messages = queue
        .ask(|reply| Command::Purge { reply })
        .await
        .ok_or_else(|| t.gone())?;
    Ok(json!({ "message_count": messages }))
}

/// `DELETE /api/exchanges/{vhost}/{name}[?if-unused=true]`.
pub(super) fn delete_exchange(t: &Target<'_>, query: &str) -> Result<Value, Refused> {
    if t.name.is_empty() || names::is_reserved(t.name) {
        return Err(Refused::new(
            403,
            format!("deletion of system exchange '{}' not allowed", t.name),
        ));
    }
    t.permit("exchange", Permissions::can_configure)?;
    let vhost = t.vhost()?;
    if vhost.snapshot().topology.exchange(t.name).is_none() {
        return Err(Refused::new(
            404,
            format!("no exchange '{}' in vhost '{}'", t.name, t.vhost),
        ));
    }
    vhost.delete_exchange(t.name, flag(query, "if-unused"))?;
    Ok(json!({}))
}

/// `DELETE /api/bindings/{vhost}/e/{source}/{q|e}/{destination}/{props}`, as
/// RabbitMQ's API: `props` is the routing key (`~` for the empty key). A binding with
/// arguments is named by a JSON body `{"arguments": {...}}` that shows them as the
/// API lists them. Needs write permission on the destination and read on the source,
/// as queue.unbind.
pub(super) fn delete_binding(
    t: &Target<'_>,
    to_queue: bool,
    destination: &str,
    props: &str,
    body: &Bytes,
) -> Result<Value, Refused> {
    let source = t.name;
    let routing_key = if props == "~" { "" } else { props };
    let arguments = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| Refused::new(400, format!("bad body: {e}")))?
            .get("arguments")
            .cloned()
            .unwrap_or_else(|| json!({}))
    };
    t.permit("exchange", Permissions::can_read)?;
    let dest = Target {
        name: destination,
        ..*t
    };
    dest.permit(
        if to_queue { "queue" } else { "exchange" },
        Permissions::can_write,
    )?;
    let vhost = t.vhost()?;
    let snapshot = vhost.snapshot();
    let found = snapshot.topology.exchange(source).and_then(|x| {
        x.bindings()
            .find(|b| {
                let same_destination = match &b.destination {
                    Destination::Queue(q) => to_queue && **q == *destination,
                    Destination::Exchange(e) => !to_queue && **e == *destination,
                };
                same_destination
                    && &*b.routing_key == routing_key
                    && json::table(&b.arguments) == arguments
            })
            .map(|b| b.arguments.clone())
    });
    let Some(binding_arguments) = found else {
        return Err(Refused::new(
            404,
            format!(
                "no binding from '{source}' to '{destination}' with key '{routing_key}' \
                 in vhost '{}'",
                t.vhost
            ),
        ));
    };
    drop(snapshot);
    if to_queue {
        vhost.unbind_queue(destination, source, routing_key, &binding_arguments)?;
    } else {
        vhost.unbind_exchange(destination, source, routing_key, &binding_arguments)?;
    }
    Ok(json!({}))
}

/// The body of `POST .../get`, as RabbitMQ's API takes it.
#[derive(Deserialize)]
struct GetRequest {
    count: usize,
    ackmode: String,
    #[serde(default = "auto")]
    encoding: String,
    truncate: Option<usize>,
}

fn auto() -> String {
    "auto".into()
}

/// `POST /api/queues/{vhost}/{name}/get`. The requeueing modes (`ack_requeue_true`,
/// `reject_requeue_true`) leave the messages where they are, not marked redelivered
/// (RabbitMQ takes them out and puts them back, redelivered). `ack_requeue_false`
/// takes them; `reject_requeue_false` takes them and dead-letters them.
pub(super) async fn get(t: &Target<'_>, body: &Bytes) -> Result<Value, Refused> {
    let request: GetRequest = serde_json::from_slice(body)
        .map_err(|e| Refused::new(400, format!("bad get request: {e}")))?;
    if !matches!(request.encoding.as_str(), "auto" | "base64") {
        return Err(Refused::new(400, "encoding must be \"auto\" or \"base64\""));
    }
    t.permit("queue", Permissions::can_read)?;
    let queue = t.queue()?;
    let count = request.count.min(GET_MAX);
    let mut out = Vec::new();
    match request.ackmode.as_str() {
        "ack_requeue_true" | "reject_requeue_true" => {
            let (peeked, ready) = queue
                .ask(|reply| Command::Peek { count, reply })
                .await
                .ok_or_else(|| t.gone())?;
            // As RabbitMQ counts it: ready messages after this one.
            let mut remaining = ready as usize;
            for Peeked {
                message,
                redelivered,
            } in peeked
            {
                remaining = remaining.saturating_sub(1);
                out.push(shown(&message, redelivered, remaining, &request));
            }
        }
        mode @ ("ack_requeue_false" | "reject_requeue_false") => {
            let discard = mode == "reject_requeue_false";
            for _ in 0..count {
                let got = queue
                    .ask(|reply| Command::Get {
                        connection: OPERATOR,
                        channel: 0,
                        no_ack: !discard,
                        reply,
                    })
                    .await
                    .ok_or_else(|| t.gone())?;
                let Some(got) = got else { break };
                if discard {
                    let ids = vec![got.entry.id()];
                    let how = Settle::Discard;
                    queue.send(Command::Settle { ids, how }).await;
                }
                let remaining = got.remaining as usize;
                out.push(shown(
                    &got.message,
                    got.entry.redelivered(),
                    remaining,
                    &request,
                ));
            }
        }
        other => {
            return Err(Refused::new(
                400,
                format!(
                    "ackmode '{other}': use ack_requeue_true, reject_requeue_true, \
                     ack_requeue_false or reject_requeue_false"
                ),
            ));
        }
    }
    Ok(Value::Array(out))
}

/// A message as RabbitMQ's `/get` shows it.
fn shown(message: &Message, redelivered: bool, remaining: usize, request: &GetRequest) -> Value {
    let body = message.body();
    let kept = &body[..request.truncate.unwrap_or(body.len()).min(body.len())];
    let (payload, encoding) = match std::str::from_utf8(kept) {
        Ok(text) if request.encoding == "auto" => (text.to_owned(), "string"),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(kept),
            "base64",
        ),
    };
    let properties = message
        .decoded_properties()
        .map(|p| json::properties(&p))
        .unwrap_or_else(|_| json!({}));
    json!({
        "payload_bytes": body.len(),
        "redelivered": redelivered,
        "exchange": message.exchange().as_str(),
        "routing_key": message.routing_key().as_str(),
        "message_count": remaining,
        "properties": properties,
        "payload": payload,
        "payload_encoding": encoding,
    })
}

/// `POST /api/queues/{vhost}/{name}/redrive` (warren's own): each ready dead-lettered
/// message goes back to the queue it died in. Moving messages out changes the queue:
/// it needs read and write permission on it.
pub(super) async fn redrive(t: &Target<'_>) -> Result<Value, Refused> {
    t.permit("queue", Permissions::can_read)?;
    t.permit("queue", Permissions::can_write)?;
    let queue = t.queue()?;
    let mut total = Redriven::default();
    loop {
        let skip = total.kept as usize;
        let round = queue
            .ask(|reply| Command::Redrive {
                skip,
                max: REDRIVE_ROUND,
                reply,
            })
            .await
            .ok_or_else(|| t.gone())?;
        for (to, n) in round.moved {
            *total.moved.entry(to).or_default() += n;
        }
        total.kept += round.kept;
        if (round.examined as usize) < REDRIVE_ROUND {
            break;
        }
    }
    let moved: u32 = total.moved.values().sum();
    Ok(json!({ "moved": moved, "to": total.moved, "kept": total.kept }))
}

/// A `name=true` query flag.
fn flag(query: &str, name: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair == name || pair.strip_prefix(name) == Some("=true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_flags() {
        assert!(flag("if-empty=true&if-unused=false", "if-empty"));
        assert!(!flag("if-empty=true&if-unused=false", "if-unused"));
        assert!(flag("if-unused", "if-unused"));
        assert!(!flag("", "if-empty"));
    }
}
