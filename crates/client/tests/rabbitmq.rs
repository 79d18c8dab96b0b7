//! The client against RabbitMQ: the core of what the other test files check against
//! warren, run against the broker at `WARREN_CLIENT_RABBITMQ_URI` (for example
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). Without it every test here is skipped and
//! says so. Names carry the process id, so runs do not collide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use warren_client::{
    BasicProperties, Channel, Confirmation, Connection, ConsumeOptions, Error, FieldTable,
    PublishOptions, QueueDeclareOptions, QueueDeleteOptions, RpcClient,
};

const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("timed out waiting for RabbitMQ")
}

/// A connection to RabbitMQ, or None (and a note in the output) when none is given.
async fn rabbitmq(test: &str) -> Option<Connection> {
    let Ok(uri) = std::env::var("WARREN_CLIENT_RABBITMQ_URI") else {
        println!("{test}: skipped, WARREN_CLIENT_RABBITMQ_URI is not set");
        return None;
    };
    Some(
        within(Connection::connect(&uri))
            .await
            .expect("connect to RabbitMQ"),
    )
}

fn name(what: &str) -> String {
    format!("warren-client-test.{what}.{}", std::process::id())
}

async fn fresh_queue(channel: &Channel, queue: &str) {
    within(channel.queue_delete(queue, QueueDeleteOptions::default()))
        .await
        .unwrap();
    within(channel.queue_declare(queue, QueueDeclareOptions::default()))
        .await
        .unwrap();
}

#[tokio::test]
async fn confirmed_publishes_come_back_with_their_properties() {
    let Some(connection) = rabbitmq("confirmed_publishes").await else {
        return;
    };
    let ch = within(connection.open_channel()).await.unwrap();
    let queue = name("confirms");
    fresh_queue(&ch, &queue).await;
    within(ch.confirm_select()).await.unwrap();
    let mut headers = FieldTable::new();
    headers.insert("tenant", "acme");
    let properties = BasicProperties {
        content_type: Some("text/plain".into()),
        delivery_mode: Some(2),
        headers: Some(headers),
        ..Default::default()
    };
    let mut confirms = Vec::new();
    for i in 0..100 {
        let body = format!("message {i}");
        confirms.push(
            within(ch.basic_publish(
                "",
                &queue,
                body,
                properties.clone(),
                PublishOptions::default(),
            ))
            .await
            .unwrap(),
        );
    }
    for confirm in confirms {
        assert_eq!(within(confirm).await.unwrap(), Confirmation::Ack);
    }
    let first = within(ch.basic_get(&queue, true)).await.unwrap().unwrap();
    assert_eq!(first.body, "message 0".as_bytes());
    assert_eq!(first.properties.content_type, properties.content_type);
    assert_eq!(first.properties.headers, properties.headers);
    within(ch.queue_delete(&queue, QueueDeleteOptions::default()))
        .await
        .unwrap();
    within(connection.close()).await.unwrap();
}

#[tokio::test]
async fn consumers_ack_and_nacked_messages_come_back_redelivered() {
    let Some(connection) = rabbitmq("consumers").await else {
        return;
    };
    let ch = within(connection.open_channel()).await.unwrap();
    let queue = name("consume");
    fresh_queue(&ch, &queue).await;
    for body in ["a", "b"] {
        within(ch.basic_publish(
            "",
            &queue,
            body,
            BasicProperties::default(),
            PublishOptions::default(),
        ))
        .await
        .unwrap();
    }
    within(ch.basic_qos(10, false)).await.unwrap();
    let mut consumer = within(ch.basic_consume(&queue, ConsumeOptions::default()))
        .await
        .unwrap();
    let a = within(consumer.next()).await.unwrap().unwrap();
    assert_eq!((&a.body[..], a.redelivered), (&b"a"[..], false));
    within(a.nack(true)).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let d = within(consumer.next()).await.unwrap().unwrap();
        seen.push((String::from_utf8_lossy(&d.body).into_owned(), d.redelivered));
        within(d.ack()).await.unwrap();
    }
    seen.sort();
    assert_eq!(seen, [("a".to_owned(), true), ("b".to_owned(), false)]);
    within(consumer.cancel()).await.unwrap();
    within(ch.queue_delete(&queue, QueueDeleteOptions::default()))
        .await
        .unwrap();
    within(connection.close()).await.unwrap();
}

#[tokio::test]
async fn channel_errors_carry_rabbitmqs_code_and_mandatory_messages_return() {
    let Some(connection) = rabbitmq("errors_and_returns").await else {
        return;
    };
    let ch = within(connection.open_channel()).await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let missing = within(ch.queue_declare(&name("missing"), passive)).await;
    assert!(
        matches!(&missing, Err(Error::ChannelClosed { code: 404, .. })),
        "{missing:?}"
    );

    let ch = within(connection.open_channel()).await.unwrap();
    within(ch.confirm_select()).await.unwrap();
    let mandatory = PublishOptions { mandatory: true };
    let confirm = within(ch.basic_publish(
        "",
        &name("nowhere"),
        "lost?",
        BasicProperties::default(),
        mandatory,
    ))
    .await
    .unwrap();
    match within(confirm).await.unwrap() {
        Confirmation::Returned(returned) => assert_eq!(returned.reply_code, 312),
        other => panic!("expected the message back, got {other:?}"),
    }
    within(connection.close()).await.unwrap();
}

#[tokio::test]
async fn rpc_over_direct_reply_to() {
    let Some(connection) = rabbitmq("rpc").await else {
        return;
    };
    let server = within(connection.open_channel()).await.unwrap();
    let queue = name("rpc");
    fresh_queue(&server, &queue).await;
    common::upper_case_responder(server, &queue).await;
    let rpc = within(RpcClient::new(&connection)).await.unwrap();
    let reply = within(rpc.call("", &queue, "ping", BasicProperties::default(), WAIT))
        .await
        .unwrap();
    assert_eq!(reply.body, "PING".as_bytes());
    drop(rpc);
    let cleanup = within(connection.open_channel()).await.unwrap();
    within(cleanup.queue_delete(&queue, QueueDeleteOptions::default()))
        .await
        .unwrap();
    within(connection.close()).await.unwrap();
}
