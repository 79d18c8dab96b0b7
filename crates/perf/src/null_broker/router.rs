//! Routing, per publishing connection: a fanout exchange reaches every consumer,
//! anything else one consumer, round robin (see the module header of `null_broker`).

use std::sync::Arc;

use warren_codec::ShortStr;

use super::content::Message;
use super::outbound::{Delivery, Outbound};
use super::registry::{Registry, Snapshot, Target};

/// One connection's view of the registry and its place in the round robin.
pub(super) struct Router {
    registry: Arc<Registry>,
    snapshot: Arc<Snapshot>,
    version: u64,
    /// The consumer the next single-target message goes to, modulo their number.
    next: usize,
    /// The last exchange published to and whether it is a fanout: a producer keeps
    /// to one exchange, so this saves a hash lookup per message.
    last_exchange: Option<(ShortStr, bool)>,
}

/// Where one message goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// No consumer anywhere: dropped.
    Nowhere,
    /// To this consumer (an index into the snapshot).
    One(usize),
    /// To every consumer.
    All,
}

impl Router {
    /// A router starting its round robin at `start`, so that connections do not all
    /// begin with the same consumer.
    pub(super) fn new(registry: Arc<Registry>, start: usize) -> Self {
        let (snapshot, version) = registry.snapshot();
        Router {
            registry,
            snapshot,
            version,
            next: start,
            last_exchange: None,
        }
    }

    /// Hands the message to its consumers' writers, waiting while a mailbox is full
    /// (that wait is what slows publishers down to their consumers' pace). A
    /// consumer whose connection has ended is skipped.
    pub(super) async fn route(&mut self, message: Message) {
        if self.registry.version() != self.version {
            (self.snapshot, self.version) = self.registry.snapshot();
            self.last_exchange = None;
        }
        let route = self.route_of(&message.exchange);
        let consumers = &self.snapshot.consumers;
        match route {
            Route::Nowhere => {}
            Route::One(i) => {
                if let Some(target) = consumers.get(i) {
                    deliver(target, message).await;
                }
            }
            Route::All => {
                if let Some((last, others)) = consumers.split_last() {
                    for target in others {
                        deliver(target, message.clone()).await;
                    }
                    deliver(last, message).await;
                }
            }
        }
    }

    fn route_of(&mut self, exchange: &ShortStr) -> Route {
        let count = self.snapshot.consumers.len();
        if count == 0 {
            return Route::Nowhere;
        }
        if !exchange.is_empty() && self.is_fanout(exchange) {
            return Route::All;
        }
        let i = self.next % count;
        self.next = i + 1;
        Route::One(i)
    }

    fn is_fanout(&mut self, exchange: &ShortStr) -> bool {
        match &self.last_exchange {
            Some((name, fanout)) if name == exchange => *fanout,
            _ => {
                let fanout = self.snapshot.fanouts.contains(exchange);
                self.last_exchange = Some((exchange.clone(), fanout));
                fanout
            }
        }
    }
}

async fn deliver(target: &Target, message: Message) {
    let delivery = Delivery {
        consumer: target.id,
        channel: target.channel,
        consumer_tag: target.consumer_tag.clone(),
        message,
    };
    // Fails only when that connection's writer has ended; its reader is about to
    // remove the consumer.
    let _ = target.outbound.send(Outbound::Deliver(delivery)).await;
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    fn registry_with(consumers: u64) -> (Arc<Registry>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(16);
        let registry = Arc::new(Registry::new());
        for id in 0..consumers {
            registry.add_consumer(Target {
                id,
                channel: 1,
                consumer_tag: "c".into(),
                outbound: tx.clone(),
            });
        }
        (registry, rx)
    }

    #[test]
    fn single_target_messages_go_round_robin() {
        let (registry, _rx) = registry_with(3);
        let mut router = Router::new(registry, 2);
        let routes: Vec<Route> = (0..4).map(|_| router.route_of(&"".into())).collect();
        assert_eq!(
            routes,
            [Route::One(2), Route::One(0), Route::One(1), Route::One(2)]
        );
        assert_eq!(router.route_of(&"perf-topic".into()), Route::One(0));
    }

    #[test]
    fn a_fanout_reaches_everyone_and_no_consumer_means_nowhere() {
        let (registry, _rx) = registry_with(2);
        registry.set_fanout(&"perf-fanout".into(), true);
        let mut router = Router::new(registry, 0);
        assert_eq!(router.route_of(&"perf-fanout".into()), Route::All);
        assert_eq!(router.route_of(&"amq.fanout".into()), Route::All);
        let (empty, _rx) = registry_with(0);
        assert_eq!(Router::new(empty, 0).route_of(&"".into()), Route::Nowhere);
    }

    #[tokio::test]
    async fn a_new_consumer_is_seen_by_the_next_publish() {
        let (registry, mut rx) = registry_with(0);
        let mut router = Router::new(registry.clone(), 0);
        let message = Message {
            exchange: "".into(),
            routing_key: "q".into(),
            properties: Default::default(),
            body: Default::default(),
        };
        router.route(message.clone()).await;
        assert!(rx.try_recv().is_err(), "nobody to deliver to");
        let (tx, mut rx) = mpsc::channel(1);
        registry.add_consumer(Target {
            id: 7,
            channel: 3,
            consumer_tag: "t".into(),
            outbound: tx,
        });
        router.route(message).await;
        assert!(matches!(
            rx.try_recv(),
            Ok(Outbound::Deliver(Delivery {
                consumer: 7,
                channel: 3,
                ..
            }))
        ));
    }
}
