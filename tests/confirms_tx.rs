//! Publisher confirms and transactions end to end: acks (with `multiple` for
//! contiguous runs, seen on the wire), confirm.select and tx.select excluding each
//! other, and tx.commit / tx.rollback for publishes and acknowledgements.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::BytesMut;
use lapin::options::ConfirmSelectOptions;
use warren_client::{self as wc, QueueDeclareOptions};
use warren_codec::{
    BasicProperties, ConfirmSelect, Frame, Method, QueueDeclare, TxCommit, TxRollback, TxSelect,
};

use common::{
    RawClient, TestBroker, connect_client, connect_lapin, counts, encode_publish, lapin_counts,
    publish_all, publish_to, within,
};

/// Reads basic.ack frames on `channel` until publishes 1..=count are all confirmed,
/// checking that each ack confirms only publishes not confirmed before and leaves no
/// gap. Returns the (delivery_tag, multiple) pairs as they came.
async fn read_acks(client: &mut RawClient, channel: u16, count: u64) -> Vec<(u64, bool)> {
    let mut acks = Vec::new();
    let mut confirmed = 0;
    while confirmed < count {
        match client.recv_method().await {
            (ch, Method::BasicAck(ack)) if ch == channel => {
                assert!(
                    ack.delivery_tag > confirmed,
                    "tag {} confirmed twice (after {acks:?})",
                    ack.delivery_tag
                );
                if !ack.multiple {
                    // Within one queue confirms come in order: a single ack is the next one.
                    assert_eq!(ack.delivery_tag, confirmed + 1, "gap before {acks:?}");
                }
                assert!(
                    ack.delivery_tag <= count,
                    "tag {} never published",
                    ack.delivery_tag
                );
                confirmed = ack.delivery_tag;
                acks.push((ack.delivery_tag, ack.multiple));
            }
            other => panic!("expected basic.ack on channel {channel}, got {other:?}"),
        }
    }
    acks
}

// ---------------------------------------------------------------------------------------
// Publisher confirms
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_publishes_is_confirmed_with_multiple_acks() {
    const COUNT: u64 = 50;
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "a_burst_of_publishes_is_confirmed_with_multiple_acks",
    )
    .await;
    client.open_channel(1).await;
    client.declare_queue(1, "confirmed").await;
    let reply = client.call(1, ConfirmSelect { nowait: false }).await;
    assert!(matches!(reply, Method::ConfirmSelectOk(_)), "{reply:?}");
    // One write: the broker reads the publishes in batches and confirms each batch's
    // contiguous run with one multiple ack.
    let mut burst = BytesMut::new();
    for i in 0..COUNT {
        encode_publish(
            &mut burst,
            1,
            publish_to("", "confirmed"),
            BasicProperties::default(),
            format!("m{i}").as_bytes(),
            0,
        );
    }
    client.send_bytes(&burst).await;
    let acks = read_acks(&mut client, 1, COUNT).await;
    assert!(
        acks.iter().any(|&(_, multiple)| multiple),
        "no multiple ack for a contiguous run: {acks:?}"
    );
    assert!(acks.len() < COUNT as usize, "{acks:?}");
    let reply = client
        .call(
            1,
            QueueDeclare {
                queue: "confirmed".into(),
                passive: true,
                ..Default::default()
            },
        )
        .await;
    match reply {
        Method::QueueDeclareOk(ok) => assert_eq!(u64::from(ok.message_count), COUNT),
        other => panic!("{other:?}"),
    }
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publishes_are_confirmed_too() {
    const COUNT: u64 = 20;
    let broker = TestBroker::start().await;
    let mut client =
        RawClient::connect(broker.addr(), "unroutable_publishes_are_confirmed_too").await;
    client.open_channel(1).await;
    // No reply to a no-wait confirm.select; the acks below show it took effect.
    client
        .send(Frame::method(1, ConfirmSelect { nowait: true }))
        .await;
    let mut burst = BytesMut::new();
    for _ in 0..COUNT {
        encode_publish(
            &mut burst,
            1,
            publish_to("amq.direct", "nobody-listens"),
            BasicProperties::default(),
            b"lost",
            0,
        );
    }
    client.send_bytes(&burst).await;
    // Unroutable publishes are confirmed as the broker reads them, so the whole burst
    // (read in one go) is one run.
    let acks = read_acks(&mut client, 1, COUNT).await;
    assert!(acks.iter().any(|&(_, multiple)| multiple), "{acks:?}");
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_publish_is_acked_with_lapin() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "every_publish_is_acked_with_lapin")
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .queue_declare(
            "lapin-confirmed".into(),
            Default::default(),
            Default::default(),
        )
        .await
        .unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut confirms = Vec::new();
    for i in 0..200 {
        confirms.push(
            channel
                .basic_publish(
                    "".into(),
                    "lapin-confirmed".into(),
                    Default::default(),
                    format!("{i}").as_bytes(),
                    lapin::BasicProperties::default(),
                )
                .await
                .unwrap(),
        );
    }
    for confirm in confirms {
        let outcome = within("a confirm", confirm).await.unwrap();
        assert!(outcome.is_ack(), "{outcome:?}");
    }
    let returned = within("wait_for_confirms", channel.wait_for_confirms())
        .await
        .unwrap();
    assert!(returned.is_empty());
    assert_eq!(lapin_counts(&channel, "lapin-confirmed").await, (200, 0));
    conn.close(200, "bye".into()).await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_mode_and_transactions_exclude_each_other_with_406() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "confirm_mode_and_transactions_exclude_each_other_with_406",
    )
    .await;
    client.open_channel(1).await;
    let reply = client.call(1, ConfirmSelect { nowait: false }).await;
    assert!(matches!(reply, Method::ConfirmSelectOk(_)), "{reply:?}");
    client.send(Frame::method(1, TxSelect {})).await;
    let (code, text, class_id, method_id) = client.expect_channel_close(1).await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode"
    );
    assert_eq!((class_id, method_id), (90, 10));

    client.open_channel(2).await;
    let reply = client.call(2, TxSelect {}).await;
    assert!(matches!(reply, Method::TxSelectOk(_)), "{reply:?}");
    client
        .send(Frame::method(2, ConfirmSelect { nowait: false }))
        .await;
    let (code, text, class_id, method_id) = client.expect_channel_close(2).await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode"
    );
    assert_eq!((class_id, method_id), (85, 10));
    client.close().await;
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_publishes_are_delivered_and_rolled_back_ones_are_not() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "committed_publishes_are_delivered_and_rolled_back_ones_are_not",
    )
    .await;
    let observer = conn.open_channel().await.unwrap();
    observer
        .queue_declare("ledger", QueueDeclareOptions::default())
        .await
        .unwrap();
    let tx = conn.open_channel().await.unwrap();
    tx.tx_select().await.unwrap();
    publish_all(&tx, "", "ledger", ["t1", "t2"]).await;
    // Not visible before commit (the declare runs after the publishes on this
    // connection, so they have reached the broker).
    assert_eq!(counts(&observer, "ledger").await, (0, 0));
    tx.tx_commit().await.unwrap();
    assert_eq!(counts(&observer, "ledger").await, (2, 0));

    publish_all(&tx, "", "ledger", ["r1", "r2", "r3"]).await;
    tx.tx_rollback().await.unwrap();
    assert_eq!(counts(&observer, "ledger").await, (2, 0));
    // The channel stays transactional: the next commit carries only what followed.
    publish_all(&tx, "", "ledger", ["t3"]).await;
    tx.tx_commit().await.unwrap();
    let mut bodies = Vec::new();
    while let Some(got) = observer.basic_get("ledger", true).await.unwrap() {
        bodies.push(String::from_utf8(got.body.to_vec()).unwrap());
    }
    assert_eq!(bodies, ["t1", "t2", "t3"]);
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_acks_settle_and_rolled_back_acks_leave_deliveries_unacked() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "committed_acks_settle_and_rolled_back_acks_leave_deliveries_unacked",
    )
    .await;
    let observer = conn.open_channel().await.unwrap();
    observer
        .queue_declare("settled-in-tx", QueueDeclareOptions::default())
        .await
        .unwrap();
    publish_all(&observer, "", "settled-in-tx", ["a", "b", "c", "d"]).await;
    let tx = conn.open_channel().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tx.basic_get("settled-in-tx", false).await.unwrap().unwrap());
    }
    tx.tx_select().await.unwrap();

    // Rolled back: a and b stay unacked, and their tags stay valid.
    held[0].ack().await.unwrap();
    held[1].reject(true).await.unwrap();
    tx.tx_rollback().await.unwrap();
    assert_eq!(
        counts(&observer, "settled-in-tx").await,
        (0, 0),
        "nothing requeued"
    );

    // Committed: a acked, b requeued, c discarded. d stays unacked.
    held[0].ack().await.unwrap();
    held[1].reject(true).await.unwrap();
    held[2].nack(false).await.unwrap();
    assert_eq!(
        counts(&observer, "settled-in-tx").await,
        (0, 0),
        "held until commit"
    );
    tx.tx_commit().await.unwrap();
    assert_eq!(
        counts(&observer, "settled-in-tx").await,
        (1, 0),
        "b is back"
    );
    let b = observer
        .basic_get("settled-in-tx", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&b.body[..], b.redelivered), (&b"b"[..], true));

    // d was never settled: closing the channel requeues it, and only it.
    tx.close().await.unwrap();
    let left = observer
        .basic_get("settled-in-tx", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&left.body[..], b"d");
    assert!(
        observer
            .basic_get("settled-in-tx", true)
            .await
            .unwrap()
            .is_none()
    );
    conn.close().await.unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_or_rollback_outside_a_transaction_closes_the_channel_with_406() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "commit_or_rollback_outside_a_transaction_closes_the_channel_with_406",
    )
    .await;
    for (ch, method, method_id) in [
        (1, Method::from(TxCommit {}), 20),
        (2, Method::from(TxRollback {}), 30),
    ] {
        client.open_channel(ch).await;
        client.send(Frame::method(ch, method)).await;
        let (code, text, class_id, mid) = client.expect_channel_close(ch).await;
        assert_eq!(code, 406);
        assert_eq!(text, "PRECONDITION_FAILED - channel is not transactional");
        assert_eq!((class_id, mid), (90, method_id));
    }
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundled_client_reports_406_for_commit_without_select() {
    let broker = TestBroker::start().await;
    let conn = connect_client(
        &broker.uri(),
        "bundled_client_reports_406_for_commit_without_select",
    )
    .await;
    let channel = conn.open_channel().await.unwrap();
    let error = channel.tx_commit().await.expect_err("not transactional");
    assert!(
        matches!(
            error,
            wc::Error::ChannelClosed {
                code: 406,
                class_id: 90,
                method_id: 20,
                ..
            }
        ),
        "{error:?}"
    );
    conn.close().await.unwrap();
    broker.stop().await;
}
