//! Direct reply-to (`amq.rabbitmq.reply-to`) with lapin: an RPC round trip with no
//! reply queue, RabbitMQ's refusals (acking reply consumer, a second one, a request
//! without one), and replies to a requester that has gone. Checked against RabbitMQ
//! 3.10.8 with pika: the same replies, codes and texts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel};

use common::{TestBroker, connect_lapin, lapin_consume, lapin_reply_code, next_lapin, within};

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

async fn channel(broker: &TestBroker, name: &str) -> (lapin::Connection, Channel) {
    let connection = connect_lapin(&broker.uri(), name).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    (connection, channel)
}

async fn request(channel: &Channel, queue: &str, body: &[u8], id: &str) -> lapin::Result<()> {
    let properties = BasicProperties::default()
        .with_reply_to(REPLY_TO.into())
        .with_correlation_id(id.into());
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .map(|_| ())
}

async fn passive(channel: &Channel, queue: &str) -> Result<(u32, u32), Option<u16>> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    within(
        "passive queue.declare",
        channel.queue_declare(queue.into(), options, FieldTable::default()),
    )
    .await
    .map(|q| (q.message_count(), q.consumer_count()))
    .map_err(|e| lapin_reply_code(&e))
}

#[tokio::test]
async fn a_reply_goes_straight_to_the_requesting_channel() {
    let broker = TestBroker::start().await;
    let (_c1, requester) = channel(&broker, "requester").await;
    let (_c2, responder) = channel(&broker, "responder").await;
    within(
        "queue.declare",
        responder.queue_declare("rpc".into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();
    let mut requests = lapin_consume(&responder, "rpc", true).await;
    let mut replies = lapin_consume(&requester, REPLY_TO, true).await;
    assert_eq!(passive(&requester, REPLY_TO).await, Ok((0, 1)));

    for (n, question) in ["one", "two"].iter().enumerate() {
        request(&requester, "rpc", question.as_bytes(), &n.to_string())
            .await
            .unwrap();
        let req = next_lapin(&mut requests).await;
        let address = req.properties.reply_to().clone().unwrap();
        assert!(
            address.as_str().starts_with("amq.rabbitmq.reply-to."),
            "{address}"
        );
        // The address names a live reply consumer, as a queue would.
        assert_eq!(passive(&responder, address.as_str()).await, Ok((0, 1)));
        let answer = format!("{} answered", String::from_utf8_lossy(&req.data));
        let properties = BasicProperties::default()
            .with_correlation_id(req.properties.correlation_id().clone().unwrap());
        responder
            .basic_publish(
                "".into(),
                address.as_str().into(),
                BasicPublishOptions::default(),
                answer.as_bytes(),
                properties,
            )
            .await
            .unwrap();
        let reply = next_lapin(&mut replies).await;
        assert_eq!(reply.data, answer.as_bytes());
        assert_eq!(
            reply
                .properties
                .correlation_id()
                .as_ref()
                .map(|s| s.as_str()),
            Some(n.to_string().as_str())
        );
        assert_eq!(reply.routing_key.as_str(), address.as_str());
        assert!(!reply.redelivered);
    }
    broker.stop().await;
}

#[tokio::test]
async fn misuse_is_refused_as_rabbitmq_does() {
    let broker = TestBroker::start().await;
    let (_c, ch) = channel(&broker, "acking reply consumer").await;
    let acking = ch
        .basic_consume(
            REPLY_TO.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert_eq!(lapin_reply_code(&acking.unwrap_err()), Some(406));

    let (_c, ch) = channel(&broker, "second reply consumer").await;
    // Kept alive: lapin cancels a consumer it drops.
    let _replies = lapin_consume(&ch, REPLY_TO, true).await;
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let second = ch
        .basic_consume(REPLY_TO.into(), "".into(), no_ack, FieldTable::default())
        .await;
    assert_eq!(lapin_reply_code(&second.unwrap_err()), Some(406));

    // A request naming reply-to on a channel without a reply consumer: observed under
    // confirms, which fail when the channel closes.
    let (_c, ch) = channel(&broker, "request without consumer").await;
    within(
        "confirm.select",
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .unwrap();
    let properties = BasicProperties::default().with_reply_to(REPLY_TO.into());
    let confirm = ch
        .basic_publish(
            "".into(),
            "anywhere".into(),
            BasicPublishOptions::default(),
            b"q",
            properties,
        )
        .await
        .unwrap();
    let refused = within("the refused request's confirm", confirm).await;
    assert_eq!(lapin_reply_code(&refused.unwrap_err()), Some(406));
    broker.stop().await;
}

#[tokio::test]
async fn a_reply_to_a_requester_that_has_gone_is_dropped() {
    let broker = TestBroker::start().await;
    let (requester_connection, requester) = channel(&broker, "short-lived requester").await;
    let (_c, responder) = channel(&broker, "responder").await;
    within(
        "queue.declare",
        responder.queue_declare("rpc".into(), Default::default(), FieldTable::default()),
    )
    .await
    .unwrap();
    let mut requests = lapin_consume(&responder, "rpc", true).await;
    let _replies = lapin_consume(&requester, REPLY_TO, true).await;
    request(&requester, "rpc", b"question", "1").await.unwrap();
    let address = next_lapin(&mut requests)
        .await
        .properties
        .reply_to()
        .clone()
        .unwrap();
    requester_connection
        .close(200, "gone".into())
        .await
        .unwrap();

    let (_c, probe) = channel(&broker, "probe").await;
    assert_eq!(passive(&probe, address.as_str()).await, Err(Some(404)));
    // The reply counts as routed: confirmed, and not returned though mandatory.
    within(
        "confirm.select",
        responder.confirm_select(ConfirmSelectOptions::default()),
    )
    .await
    .unwrap();
    let mandatory = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let confirm = responder
        .basic_publish(
            "".into(),
            address.as_str().into(),
            mandatory,
            b"late",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    let outcome = within("the late reply's confirm", confirm).await.unwrap();
    assert!(
        matches!(outcome, lapin::Confirmation::Ack(None)),
        "{outcome:?}"
    );
    broker.stop().await;
}
