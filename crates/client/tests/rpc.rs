//! The RPC client on direct reply-to, against an in-process warren: concurrent calls
//! matched by correlation id, a timeout when nobody answers, and the reason when the
//! connection goes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Broker, within};
use warren_client::{BasicProperties, Channel, Error, QueueDeclareOptions, RpcClient};

/// Declares `queue` and answers its requests in upper case.
async fn responder(channel: Channel, queue: &str) {
    channel
        .queue_declare(queue, QueueDeclareOptions::default())
        .await
        .unwrap();
    common::upper_case_responder(channel, queue).await;
}

#[tokio::test]
async fn concurrent_calls_get_their_own_replies() {
    let broker = Broker::start().await;
    let server = broker.connect("rpc responder").await;
    responder(within(server.open_channel()).await.unwrap(), "upper").await;
    let client = broker.connect("rpc caller").await;
    let rpc = within(RpcClient::new(&client)).await.unwrap();
    let words: Vec<String> = (0..20).map(|i| format!("word {i}")).collect();
    let calls = words.iter().map(|w| {
        rpc.call(
            "",
            "upper",
            w.clone(),
            BasicProperties::default(),
            Duration::from_secs(5),
        )
    });
    let replies = within(futures_util::future::join_all(calls)).await;
    for (word, reply) in words.iter().zip(replies) {
        let reply = reply.unwrap();
        assert_eq!(reply.body, word.to_uppercase().as_bytes());
        assert!(
            reply
                .routing_key
                .as_str()
                .starts_with("amq.rabbitmq.reply-to.")
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_call_nobody_answers_times_out_and_a_closed_connection_says_why() {
    let broker = Broker::start().await;
    let client = broker.connect("rpc caller without responder").await;
    let channel = within(client.open_channel()).await.unwrap();
    channel
        .queue_declare("nobody", QueueDeclareOptions::default())
        .await
        .unwrap();
    let rpc = within(RpcClient::new(&client)).await.unwrap();
    let timeout = Duration::from_millis(200);
    let late = rpc
        .call("", "nobody", "hello?", BasicProperties::default(), timeout)
        .await;
    assert!(
        matches!(late, Err(Error::Timeout(t)) if t == timeout),
        "{late:?}"
    );

    let pending = rpc.call(
        "",
        "nobody",
        "again?",
        BasicProperties::default(),
        Duration::from_secs(30),
    );
    let (result, ()) = within(futures_util::future::join(pending, async {
        broker.shutdown();
    }))
    .await;
    assert_eq!(result.unwrap_err().reply_code(), Some(320));
    broker.stop().await;
}
