//! Queue actor tests: the real task, driven through its mailbox, observed through a
//! connection's event stream. A property test checks publish / get / settle / purge
//! sequences against a plain model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Weak};

use bytes::Bytes;
use proptest::prelude::*;
use tokio::sync::mpsc;

use super::*;
use crate::channel::gate::ChannelGate;
use crate::connection::events::{Batch, ConnectionHandle, Event};

fn message(n: u32) -> Message {
    Message::new(
        &"".into(),
        &"q".into(),
        &[0, 0],
        Bytes::from(n.to_be_bytes().to_vec()),
    )
}

fn number(m: &Message) -> u32 {
    u32::from_be_bytes(m.body()[..4].try_into().unwrap())
}

fn unlimited() -> Arc<Alarm> {
    Arc::new(Alarm::new(u64::MAX))
}

fn queue() -> QueueHandle {
    spawn(
        QueueInfo::named("q"),
        Weak::new(),
        unlimited(),
        Durable::in_temp_dir(),
        Restored::default(),
        Settings::default(),
    )
}

async fn publish(q: &QueueHandle, n: u32) {
    assert!(
        q.send(Command::Publish(Publishes::one(message(n), 0)))
            .await
    );
}

async fn get(q: &QueueHandle, no_ack: bool) -> Option<Got> {
    q.ask(|reply| Command::Get {
        connection: 1,
        channel: 1,
        no_ack,
        reply,
    })
    .await
    .unwrap()
}

fn consumer(
    conn: &ConnectionHandle,
    tag: &str,
    prefetch: u16,
    gate: Arc<ChannelGate>,
) -> ConsumerSpec {
    ConsumerSpec {
        id: tag_id(tag),
        tag: tag.into(),
        connection: conn.clone(),
        channel: 1,
        gate,
        no_ack: false,
        exclusive: false,
        prefetch,
        priority: 0,
    }
}

async fn consume(q: &QueueHandle, spec: ConsumerSpec) -> Result<(), ChannelError> {
    q.ask(|reply| Command::Consume {
        consumer: spec,
        reply,
    })
    .await
    .unwrap()
}

/// A test consumer's id: its tag's bytes (tags here are at most 8 bytes), so a
/// delivery names its consumer's tag.
fn tag_id(tag: &str) -> u64 {
    tag.bytes().fold(0, |id, b| id << 8 | u64::from(b))
}

fn id_tag(id: u64) -> String {
    let bytes: Vec<u8> = id
        .to_be_bytes()
        .into_iter()
        .skip_while(|&b| b == 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Deliveries that have arrived, flattening batches. On the current-thread test
/// runtime the queue task runs a whole wake-up (handle, deliver, flush) without
/// yielding, so once the Counts reply is in, so are the deliveries before it.
async fn deliveries(
    q: &QueueHandle,
    rx: &mut mpsc::UnboundedReceiver<Batch>,
) -> Vec<(String, u32, u64, bool)> {
    q.ask(|reply| Command::Counts { reply }).await.unwrap();
    let mut out = Vec::new();
    while let Ok(batch) = rx.try_recv() {
        for event in batch.events {
            if let Event::Deliver(d) = event {
                out.push((
                    id_tag(d.consumer),
                    number(&d.message),
                    d.message_id,
                    d.redelivered,
                ));
            }
        }
    }
    out
}

#[tokio::test]
async fn get_returns_messages_in_publish_order_with_remaining_count() {
    let q = queue();
    for n in 0..3 {
        publish(&q, n).await;
    }
    let first = get(&q, true).await.unwrap();
    assert_eq!((number(&first.entry.message), first.remaining), (0, 2));
    assert_eq!(number(&get(&q, true).await.unwrap().entry.message), 1);
    assert_eq!(number(&get(&q, true).await.unwrap().entry.message), 2);
    assert!(get(&q, true).await.is_none());
}

#[tokio::test]
async fn prefetch_limits_unacked_deliveries_per_consumer() {
    let q = queue();
    let (conn, mut rx) = ConnectionHandle::new();
    consume(&q, consumer(&conn, "c", 3, Arc::new(ChannelGate::new())))
        .await
        .unwrap();
    for n in 0..10 {
        publish(&q, n).await;
    }
    let got = deliveries(&q, &mut rx).await;
    assert_eq!(got.iter().map(|d| d.1).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(
        q.send(Command::Settle {
            ids: vec![got[0].2],
            how: Settle::Ack
        })
        .await
    );
    let more = deliveries(&q, &mut rx).await;
    assert_eq!(more.iter().map(|d| d.1).collect::<Vec<_>>(), [3]);
}

#[tokio::test]
async fn channel_window_spans_consumers() {
    let q = queue();
    let (conn, mut rx) = ConnectionHandle::new();
    let gate = Arc::new(ChannelGate::new());
    gate.set_limit(2);
    consume(&q, consumer(&conn, "a", 0, gate.clone()))
        .await
        .unwrap();
    consume(&q, consumer(&conn, "b", 0, gate.clone()))
        .await
        .unwrap();
    for n in 0..5 {
        publish(&q, n).await;
    }
    assert_eq!(deliveries(&q, &mut rx).await.len(), 2);
}

#[tokio::test]
async fn higher_priority_consumers_are_served_first_and_round_robin_among_equals() {
    let q = queue();
    let (conn, mut rx) = ConnectionHandle::new();
    let gate = Arc::new(ChannelGate::new());
    let with_priority = |tag, prefetch, priority| ConsumerSpec {
        priority,
        ..consumer(&conn, tag, prefetch, gate.clone())
    };
    consume(&q, with_priority("low", 0, -1)).await.unwrap();
    consume(&q, with_priority("high-a", 2, 5)).await.unwrap();
    consume(&q, with_priority("mid", 0, 0)).await.unwrap();
    consume(&q, with_priority("high-b", 1, 5)).await.unwrap();
    for n in 0..6 {
        publish(&q, n).await;
    }
    let tags: Vec<String> = deliveries(&q, &mut rx)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    // The high ones until their prefetch is full, then the next priority down.
    assert_eq!(tags, ["high-a", "high-b", "high-a", "mid", "mid", "mid"]);
}

#[tokio::test]
async fn a_single_active_consumer_gets_everything_until_it_goes() {
    let mut info = QueueInfo::named("sac");
    info.settings.single_active_consumer = true;
    let settings = info.settings.clone();
    let q = spawn(
        info,
        Weak::new(),
        unlimited(),
        Durable::in_temp_dir(),
        Restored::default(),
        settings,
    );
    let (conn, mut rx) = ConnectionHandle::new();
    let gate = Arc::new(ChannelGate::new());
    consume(&q, consumer(&conn, "first", 2, gate.clone()))
        .await
        .unwrap();
    consume(&q, consumer(&conn, "second", 0, gate.clone()))
        .await
        .unwrap();
    for n in 0..4 {
        publish(&q, n).await;
    }
    // The second waits even though the first's prefetch is full.
    let got = deliveries(&q, &mut rx).await;
    assert_eq!(
        got.iter().map(|d| (d.0.as_str(), d.1)).collect::<Vec<_>>(),
        [("first", 0), ("first", 1)]
    );
    q.ask(|reply| Command::Cancel {
        connection: conn.id,
        channel: 1,
        tag: "first".into(),
        reply,
    })
    .await
    .unwrap();
    let after = deliveries(&q, &mut rx).await;
    assert_eq!(
        after
            .iter()
            .map(|d| (d.0.as_str(), d.1))
            .collect::<Vec<_>>(),
        [("second", 2), ("second", 3)]
    );
}

#[tokio::test]
async fn consumers_are_served_round_robin() {
    let q = queue();
    let (conn, mut rx) = ConnectionHandle::new();
    let gate = Arc::new(ChannelGate::new());
    consume(&q, consumer(&conn, "a", 0, gate.clone()))
        .await
        .unwrap();
    consume(&q, consumer(&conn, "b", 0, gate.clone()))
        .await
        .unwrap();
    for n in 0..6 {
        publish(&q, n).await;
    }
    let tags: Vec<String> = deliveries(&q, &mut rx)
        .await
        .into_iter()
        .map(|d| d.0)
        .collect();
    assert_eq!(tags, ["a", "b", "a", "b", "a", "b"]);
}

#[tokio::test]
async fn requeued_messages_come_back_first_and_marked_redelivered() {
    let q = queue();
    for n in 0..3 {
        publish(&q, n).await;
    }
    let a = get(&q, false).await.unwrap();
    let b = get(&q, false).await.unwrap();
    assert!(
        q.send(Command::Settle {
            ids: vec![b.entry.id(), a.entry.id()],
            how: Settle::Requeue
        })
        .await
    );
    let order: Vec<(u32, bool)> = [
        get(&q, true).await,
        get(&q, true).await,
        get(&q, true).await,
    ]
    .into_iter()
    .map(|g| g.unwrap())
    .map(|g| (number(&g.entry.message), g.entry.redelivered()))
    .collect();
    assert_eq!(order, [(0, true), (1, true), (2, false)]);
}

#[tokio::test]
async fn closing_a_channel_requeues_its_unacked_and_drops_its_consumers() {
    let q = queue();
    let (conn, mut rx) = ConnectionHandle::new();
    consume(&q, consumer(&conn, "c", 0, Arc::new(ChannelGate::new())))
        .await
        .unwrap();
    publish(&q, 7).await;
    assert_eq!(deliveries(&q, &mut rx).await.len(), 1);
    assert!(
        q.send(Command::ChannelClosed {
            connection: conn.id,
            channel: 1
        })
        .await
    );
    let counts = q.ask(|reply| Command::Counts { reply }).await;
    assert_eq!(counts, Some((1, 0)));
    let again = get(&q, true).await.unwrap();
    assert!(again.entry.redelivered());
}

#[tokio::test]
async fn exclusive_consumer_is_alone() {
    let q = queue();
    let (conn, _rx) = ConnectionHandle::new();
    let gate = Arc::new(ChannelGate::new());
    consume(&q, consumer(&conn, "a", 0, gate.clone()))
        .await
        .unwrap();
    let mut exclusive = consumer(&conn, "b", 0, gate.clone());
    exclusive.exclusive = true;
    let err = consume(&q, exclusive).await.unwrap_err();
    assert_eq!(err.code().code(), 403);
}

#[tokio::test]
async fn delete_checks_if_unused_and_if_empty() {
    let q = queue();
    publish(&q, 1).await;
    let refused = q
        .ask(|reply| Command::Delete {
            if_unused: false,
            if_empty: true,
            reply,
        })
        .await
        .unwrap();
    assert_eq!(refused.map_err(|e| e.code().code()), Err(406));
    let deleted = q
        .ask(|reply| Command::Delete {
            if_unused: true,
            if_empty: false,
            reply,
        })
        .await
        .unwrap();
    assert_eq!(deleted, Ok(1));
    assert!(q.ask(|reply| Command::Counts { reply }).await.is_none());
}

#[derive(Debug, Clone)]
enum Op {
    Publish,
    Get { no_ack: bool },
    AckOldest,
    RequeueNewest,
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Publish),
        2 => any::<bool>().prop_map(|no_ack| Op::Get { no_ack }),
        1 => Just(Op::AckOldest),
        1 => Just(Op::RequeueNewest),
        1 => Just(Op::Purge),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn queue_matches_a_model(ops in proptest::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let q = queue();
            // Model: ready messages (number, redelivered) in delivery order; unacked (id, number).
            let mut ready: Vec<(u32, bool)> = Vec::new();
            let mut unacked: Vec<(u64, u32)> = Vec::new();
            let mut next = 0u32;
            for op in ops {
                match op {
                    Op::Publish => {
                        publish(&q, next).await;
                        ready.push((next, false));
                        next += 1;
                    }
                    Op::Get { no_ack } => {
                        let got = get(&q, no_ack).await;
                        let expected = if ready.is_empty() { None } else { Some(ready.remove(0)) };
                        let actual = got.as_ref().map(|g| (number(&g.entry.message), g.entry.redelivered()));
                        assert_eq!(actual, expected);
                        if let (Some(g), false) = (got, no_ack) {
                            unacked.push((g.entry.id(), number(&g.entry.message)));
                        }
                    }
                    Op::AckOldest => {
                        if !unacked.is_empty() {
                            let (id, _) = unacked.remove(0);
                            assert!(q.send(Command::Settle { ids: vec![id], how: Settle::Ack }).await);
                        }
                    }
                    Op::RequeueNewest => {
                        if let Some((id, n)) = unacked.pop() {
                            assert!(q.send(Command::Settle { ids: vec![id], how: Settle::Requeue }).await);
                            // Back to its place by publish order.
                            let at = ready.iter().position(|(m, _)| *m > n).unwrap_or(ready.len());
                            ready.insert(at, (n, true));
                        }
                    }
                    Op::Purge => {
                        let purged = q.ask(|reply| Command::Purge { reply }).await.unwrap();
                        assert_eq!(purged as usize, ready.len());
                        ready.clear();
                    }
                }
                let counts = q.ask(|reply| Command::Counts { reply }).await.unwrap();
                assert_eq!(counts.0 as usize, ready.len());
            }
        });
    }
}

#[tokio::test]
async fn stats_count_what_the_queue_did_and_when_the_oldest_ready_message_came() {
    let q = queue();
    let stats =
        |q: QueueHandle| async move { q.ask(|reply| Command::Stats { reply }).await.unwrap() };
    assert_eq!(stats(q.clone()).await.oldest_ready_at, None);
    let before = crate::durable::now_ms();
    for n in 0..4 {
        publish(&q, n).await;
    }
    let first = get(&q, false).await.unwrap();
    let second = get(&q, false).await.unwrap();
    assert!(get(&q, true).await.is_some());
    let settle = |id, how| Command::Settle { ids: vec![id], how };
    assert!(q.send(settle(first.entry.id(), Settle::Ack)).await);
    assert!(q.send(settle(second.entry.id(), Settle::Requeue)).await);
    let again = get(&q, false).await.unwrap();
    assert!(again.entry.redelivered());
    assert!(q.send(settle(again.entry.id(), Settle::Requeue)).await);
    let s = stats(q.clone()).await;
    assert_eq!(
        s.counters,
        Counters {
            published: 4,
            got: 3,
            got_no_ack: 1,
            acked: 1,
            redelivered: 1,
            ..Counters::default()
        }
    );
    assert_eq!(s.counters.deliver_get(), 4);
    assert_eq!((s.ready, s.unacked), (2, 0));
    // The requeued message keeps its enqueue time.
    assert_eq!(s.oldest_ready_at, Some(second.entry.enqueued()));
    let at = second.entry.enqueued();
    assert!(at >= before && at <= crate::durable::now_ms());
}
