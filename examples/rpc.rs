//! Request/reply (RPC) over direct reply-to.
//!
//! A currency service answers price requests from the queue `example.rpc.prices`; a
//! shop asks it for three prices through [`warren_client::RpcClient`], which matches
//! each reply to its call by correlation id and needs no reply queue (replies come
//! straight back to its channel through `amq.rabbitmq.reply-to`). A request to a
//! service nobody runs times out instead of waiting forever.
//!
//! ```text
//! cargo run --example rpc          # against amqp://guest:guest@127.0.0.1:5672/%2f
//! AMQP_URL=amqp://user:pass@host:5672/vhost cargo run --example rpc
//! ```

use std::time::Duration;

use futures_util::StreamExt;
use warren_client::{
    BasicProperties, Channel, Connection, ConsumeOptions, Error, PublishOptions,
    QueueDeclareOptions, QueueDeleteOptions, RpcClient,
};

const PRICES: &str = "example.rpc.prices";
const NOBODY: &str = "example.rpc.unserved";

/// The currency service: answers `EUR/USD` style requests with a fixed rate.
async fn serve_prices(channel: Channel) -> Result<(), Error> {
    let mut requests = channel
        .basic_consume(PRICES, ConsumeOptions::default())
        .await?;
    tokio::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let pair = String::from_utf8_lossy(&request.body).into_owned();
            let rate = match pair.as_str() {
                "EUR/USD" => "1.08",
                "GBP/USD" => "1.27",
                _ => "unknown pair",
            };
            let Some(reply_to) = request.properties.reply_to.clone() else {
                continue;
            };
            // The reply carries the request's correlation id back.
            let properties = BasicProperties {
                correlation_id: request.properties.correlation_id.clone(),
                ..Default::default()
            };
            let sent = channel
                .basic_publish("", &reply_to, rate, properties, PublishOptions::default())
                .await;
            if sent.is_err() || request.ack().await.is_err() {
                break;
            }
        }
    });
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let connection = Connection::connect(&url).await?;
    let setup = connection.open_channel().await?;
    for queue in [PRICES, NOBODY] {
        setup
            .queue_declare(queue, QueueDeclareOptions::default())
            .await?;
    }
    serve_prices(connection.open_channel().await?).await?;

    let shop = RpcClient::new(&connection).await?;
    let timeout = Duration::from_secs(5);
    let asks = ["EUR/USD", "GBP/USD", "XAU/EUR"];
    let calls = asks.map(|pair| shop.call("", PRICES, pair, BasicProperties::default(), timeout));
    let replies = futures_util::future::join_all(calls).await;
    let expected = ["1.08", "1.27", "unknown pair"];
    for ((pair, reply), want) in asks.iter().zip(replies).zip(expected) {
        let reply = reply?;
        let got = String::from_utf8_lossy(&reply.body);
        println!("{pair}: {got}");
        if got != want {
            return Err(format!("{pair}: expected {want}, got {got}").into());
        }
    }

    let short = Duration::from_millis(300);
    match shop
        .call("", NOBODY, "ping", BasicProperties::default(), short)
        .await
    {
        Err(Error::Timeout(_)) => {
            println!("unserved request timed out after {short:?}, as it should")
        }
        other => {
            return Err(format!("a request nobody serves should time out, got {other:?}").into());
        }
    }

    for queue in [PRICES, NOBODY] {
        setup
            .queue_delete(queue, QueueDeleteOptions::default())
            .await?;
    }
    connection.close().await?;
    Ok(())
}
