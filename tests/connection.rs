//! The connection lifecycle, end to end over TCP: the handshake and its refusals, tuning,
//! channels, protocol errors and their reply codes, heartbeats, timeouts, limits and
//! graceful shutdown. lapin checks what a real client sees; the raw client checks the
//! exact frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use warren_codec::{
    BasicProperties, BasicPublish, BasicQos, ChannelClose, ChannelOpen, ContentHeader, Frame,
    Method, PROTOCOL_HEADER,
};
use warren_server::auth::PasswordHash;
use warren_server::config::{UserConfig, VhostConfig};

use common::{Login, Mechanism, RawClient, TestBroker, WAIT, connect_lapin, lapin_reply_code};

// ---------------------------------------------------------------------------------------
// With lapin
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_channels_open_and_close_cleanly() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(&broker.uri(), "hundred_channels_open_and_close_cleanly")
        .await
        .expect("connect");
    let mut channels = Vec::new();
    for _ in 0..100 {
        channels.push(conn.create_channel().await.expect("channel.open"));
    }
    let mut ids: Vec<u16> = channels.iter().map(|c| c.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "every channel got its own id");
    for channel in &channels {
        channel
            .close(200, "bye".into())
            .await
            .expect("channel.close");
        assert!(!channel.status().connected());
    }
    // The connection is still usable after closing every channel.
    let again = conn
        .create_channel()
        .await
        .expect("channel.open after closes");
    again.close(200, "bye".into()).await.expect("channel.close");
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_with_403() {
    let broker = TestBroker::start().await;
    let error = connect_lapin(
        &broker.uri_for("guest", "wrong", "%2f"),
        "wrong_password_is_refused_with_403",
    )
    .await
    .expect_err("login with a wrong password must fail");
    assert_eq!(lapin_reply_code(&error), Some(403), "{error:?}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_is_refused_with_403() {
    let broker = TestBroker::start().await;
    let error = connect_lapin(
        &broker.uri_for("nobody", "guest", "%2f"),
        "unknown_user_is_refused_with_403",
    )
    .await
    .expect_err("login as an unknown user must fail");
    assert_eq!(lapin_reply_code(&error), Some(403), "{error:?}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_vhost_is_refused_with_530() {
    let broker = TestBroker::start().await;
    let error = connect_lapin(
        &broker.uri_for("guest", "guest", "no-such-vhost"),
        "unknown_vhost_is_refused_with_530",
    )
    .await
    .expect_err("opening an unknown vhost must fail");
    assert_eq!(lapin_reply_code(&error), Some(530), "{error:?}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhost_without_permission_is_refused_with_530() {
    let mut config = TestBroker::config();
    config.vhosts.push(VhostConfig {
        name: "private".into(),
    });
    let broker = TestBroker::start_with(config).await;
    let error = connect_lapin(
        &broker.uri_for("guest", "guest", "private"),
        "vhost_without_permission_is_refused_with_530",
    )
    .await
    .expect_err("a vhost the user has no permission on must be refused");
    assert_eq!(lapin_reply_code(&error), Some(530), "{error:?}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_max_and_heartbeat_are_negotiated_as_the_client_asks() {
    let broker = TestBroker::start().await;
    let uri = format!("{}?frame_max=8192&heartbeat=5", broker.uri());
    let conn = connect_lapin(
        &uri,
        "frame_max_and_heartbeat_are_negotiated_as_the_client_asks",
    )
    .await
    .expect("connect");
    let negotiated = conn.configuration();
    assert_eq!(negotiated.frame_max(), 8192);
    assert_eq!(negotiated.heartbeat(), 5);
    assert_eq!(negotiated.channel_max(), 2047, "the server's channel_max");
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_gets_the_server_limits_when_it_asks_for_none() {
    let mut config = TestBroker::config();
    config.limits.frame_max = 65_536;
    config.limits.channel_max = 100;
    config.limits.heartbeat = 30;
    let broker = TestBroker::start_with(config).await;
    let conn = connect_lapin(
        &broker.uri(),
        "lapin_gets_the_server_limits_when_it_asks_for_none",
    )
    .await
    .expect("connect");
    let negotiated = conn.configuration();
    assert_eq!(negotiated.frame_max(), 65_536);
    assert_eq!(negotiated.channel_max(), 100);
    assert_eq!(negotiated.heartbeat(), 30);
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_is_answered_and_the_connection_ends() {
    let broker = TestBroker::start().await;
    let conn = connect_lapin(
        &broker.uri(),
        "client_close_is_answered_and_the_connection_ends",
    )
    .await
    .expect("connect");
    let _channel = conn.create_channel().await.expect("channel.open");
    // close() resolves only on the broker's close-ok.
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    // stop() checks the connection task ended after the close.
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// With the raw client: the handshake
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocol_header_gets_ours_back_then_eof() {
    let broker = TestBroker::start().await;
    for header in [&b"HTTP/1.1\r\n\r\n"[..], &b"AMQP\x01\x01\x00\x09"[..]] {
        let mut client = RawClient::tcp(broker.addr()).await;
        client.send_bytes(header).await;
        assert_eq!(
            client.read_to_eof().await,
            PROTOCOL_HEADER,
            "answer to {:?}",
            String::from_utf8_lossy(header)
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tune_offers_the_configured_limits() {
    let mut config = TestBroker::config();
    config.limits.frame_max = 65_536;
    config.limits.channel_max = 64;
    config.limits.heartbeat = 15;
    let broker = TestBroker::start_with(config).await;
    let (client, tuned) = RawClient::connect_with(
        broker.addr(),
        &Login::guest("tune_offers_the_configured_limits"),
    )
    .await
    .expect("handshake");
    assert_eq!(
        (
            tuned.offered.channel_max,
            tuned.offered.frame_max,
            tuned.offered.heartbeat
        ),
        (64, 65_536, 15)
    );
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tune_ok_beyond_the_server_limits_is_refused_with_530() {
    let broker = TestBroker::start().await;
    let base = Login::guest("tune_ok_beyond_the_server_limits_is_refused_with_530");
    let refused = [
        Login {
            channel_max: Some(4000),
            ..base.clone()
        },
        Login {
            frame_max: Some(1024),
            ..base.clone()
        },
        Login {
            frame_max: Some(1 << 20),
            ..base
        },
    ];
    for login in refused {
        let (code, text, class_id, method_id) = RawClient::connect_with(broker.addr(), &login)
            .await
            .err()
            .unwrap_or_else(|| panic!("tune-ok {login:?} must be refused"));
        assert_eq!(code, 530, "{text}");
        assert!(text.starts_with("NOT_ALLOWED - "), "{text}");
        assert_eq!((class_id, method_id), (10, 31), "failing method: tune-ok");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_wrong_password_is_refused_with_403_from_start_ok() {
    let broker = TestBroker::start().await;
    let login = Login {
        password: "wrong".into(),
        ..Login::guest("plain_wrong_password_is_refused_with_403_from_start_ok")
    };
    let (code, text, class_id, method_id) = RawClient::connect_with(broker.addr(), &login)
        .await
        .err()
        .expect("a wrong password must be refused");
    assert_eq!(code, 403);
    assert!(text.starts_with("ACCESS_REFUSED - "), "{text}");
    assert_eq!((class_id, method_id), (10, 11), "failing method: start-ok");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqplain_login_works() {
    let broker = TestBroker::start().await;
    let login = Login {
        mechanism: Mechanism::AmqPlain,
        ..Login::guest("amqplain_login_works")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .expect("AMQPLAIN login");
    client.open_channel(1).await;
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqplain_wrong_password_is_refused_with_403() {
    let broker = TestBroker::start().await;
    let login = Login {
        mechanism: Mechanism::AmqPlain,
        password: "wrong".into(),
        ..Login::guest("amqplain_wrong_password_is_refused_with_403")
    };
    let (code, text, ..) = RawClient::connect_with(broker.addr(), &login)
        .await
        .err()
        .expect("a wrong AMQPLAIN password must be refused");
    assert_eq!(code, 403, "{text}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_as_a_configured_user_with_its_hashed_password() {
    let mut config = TestBroker::config();
    config.users.push(UserConfig {
        name: "alice".into(),
        password_hash: PasswordHash::compute([1, 2, 3, 4], b"s3cret"),
        loopback_only: false,
    });
    // alice exists but has no permissions on "/": she authenticates, then open is refused.
    let broker = TestBroker::start_with(config).await;
    let alice = Login {
        user: "alice".into(),
        password: "s3cret".into(),
        ..Login::guest("login_as_a_configured_user_with_its_hashed_password")
    };
    let (code, text, class_id, method_id) = RawClient::connect_with(broker.addr(), &alice)
        .await
        .err()
        .expect("alice has no permission on /");
    assert_eq!(code, 530, "{text}");
    assert_eq!((class_id, method_id), (10, 40), "failing method: open");
    let wrong = Login {
        password: "guest".into(),
        ..alice
    };
    let (code, ..) = RawClient::connect_with(broker.addr(), &wrong)
        .await
        .err()
        .expect("wrong password for alice");
    assert_eq!(code, 403);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_silent_before_the_protocol_header_is_dropped_after_handshake_timeout() {
    let mut config = TestBroker::config();
    config.limits.handshake_timeout = Duration::from_secs(1);
    let broker = TestBroker::start_with(config).await;
    let started = Instant::now();
    let mut client = RawClient::tcp(broker.addr()).await;
    assert_eq!(client.read_to_eof().await, b"", "dropped without a word");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "not before the timeout"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_stalling_after_connection_start_is_dropped_after_handshake_timeout() {
    let mut config = TestBroker::config();
    config.limits.handshake_timeout = Duration::from_secs(1);
    let broker = TestBroker::start_with(config).await;
    let mut client = RawClient::tcp(broker.addr()).await;
    client.send_bytes(&PROTOCOL_HEADER).await;
    let started = Instant::now();
    match client.recv_method().await {
        (0, Method::ConnectionStart(_)) => {}
        other => panic!("expected connection.start, got {other:?}"),
    }
    // No start-ok: the broker must give up on its own.
    client.expect_eof().await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// With the raw client: protocol errors
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_larger_than_frame_max_closes_with_501() {
    let broker = TestBroker::start().await;
    let login = Login {
        frame_max: Some(4096),
        ..Login::guest("frame_larger_than_frame_max_closes_with_501")
    };
    let (mut client, tuned) = RawClient::connect_with(broker.addr(), &login)
        .await
        .expect("handshake");
    assert_eq!(tuned.agreed.frame_max, 4096);
    client.open_channel(1).await;
    // 4096 bytes of payload make a 4104-byte frame.
    client
        .send(Frame::Body {
            channel: 1,
            body: Bytes::from(vec![0u8; 4096]),
        })
        .await;
    let (code, text, ..) = client.expect_close().await;
    assert_eq!(code, 501, "{text}");
    assert!(text.starts_with("FRAME_ERROR - "), "{text}");
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frame_end_closes_with_501() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(broker.addr(), "bad_frame_end_closes_with_501").await;
    // A heartbeat frame whose end octet is 0x00 instead of 0xCE.
    client.send_bytes(&[8, 0, 0, 0, 0, 0, 0, 0x00]).await;
    let (code, text, ..) = client.expect_close().await;
    assert_eq!(code, 501, "{text}");
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_method_closes_with_503() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(broker.addr(), "unknown_method_closes_with_503").await;
    client.open_channel(1).await;
    // A method frame on channel 1 for class 60 (basic), method 255, which does not exist.
    client
        .send_bytes(&[1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 255, 0xCE])
        .await;
    // RabbitMQ drops the socket here; warren closes with 503 COMMAND_INVALID and the ids.
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 503, "{text}");
    assert_eq!((class_id, method_id), (60, 255));
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_on_a_channel_other_than_0_closes_with_505() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "heartbeat_on_a_channel_other_than_0_closes_with_505",
    )
    .await;
    client.send_bytes(&[8, 0, 1, 0, 0, 0, 0, 0xCE]).await;
    let (code, text, ..) = client.expect_close().await;
    assert_eq!(code, 505, "{text}");
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_on_a_channel_never_opened_closes_with_504() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "method_on_a_channel_never_opened_closes_with_504",
    )
    .await;
    client
        .send(Frame::method(
            7,
            ChannelClose {
                reply_code: 200,
                reply_text: "bye".into(),
                ..Default::default()
            },
        ))
        .await;
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 504, "{text}");
    assert!(text.starts_with("CHANNEL_ERROR - "), "{text}");
    assert_eq!(
        (class_id, method_id),
        (20, 40),
        "failing method: channel.close"
    );
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_channel_open_on_an_open_channel_closes_with_504() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "second_channel_open_on_an_open_channel_closes_with_504",
    )
    .await;
    client.open_channel(1).await;
    client.send(Frame::method(1, ChannelOpen::default())).await;
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 504, "{text}");
    assert_eq!((class_id, method_id), (20, 10));
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_connection_method_on_channel_0_closes_with_504() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "non_connection_method_on_channel_0_closes_with_504",
    )
    .await;
    client.send(Frame::method(0, ChannelOpen::default())).await;
    // RabbitMQ: CHANNEL_ERROR "unexpected method in connection state running".
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 504, "{text}");
    assert_eq!((class_id, method_id), (20, 10));
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_header_on_channel_0_closes_with_505() {
    let broker = TestBroker::start().await;
    let mut client =
        RawClient::connect(broker.addr(), "content_header_on_channel_0_closes_with_505").await;
    client
        .send(Frame::Header {
            channel: 0,
            header: ContentHeader::new(0, BasicProperties::default()),
        })
        .await;
    let (code, text, ..) = client.expect_close().await;
    assert_eq!(code, 505, "{text}");
    client.close_ok().await;
    broker.stop().await;
}

/// A method between basic.publish and its content header closes the connection with
/// 505, naming the method that came in between: another publish (the fast publish
/// path) or any other method (the general one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_between_publish_and_its_content_closes_with_505() {
    let broker = TestBroker::start().await;
    for (interloper, ids) in [
        (Method::from(BasicPublish::default()), (60, 40)),
        (Method::from(BasicQos::default()), (60, 10)),
    ] {
        let mut client = RawClient::connect(
            broker.addr(),
            "method_between_publish_and_its_content_closes_with_505",
        )
        .await;
        client.open_channel(1).await;
        client.send(Frame::method(1, BasicPublish::default())).await;
        client.send(Frame::method(1, interloper)).await;
        let (code, text, class_id, method_id) = client.expect_close().await;
        assert_eq!(code, 505, "{text}");
        assert!(text.contains("expected content header"), "{text}");
        assert_eq!((class_id, method_id), ids);
        client.close_ok().await;
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_open_beyond_channel_max_closes_with_530() {
    let broker = TestBroker::start().await;
    let login = Login {
        channel_max: Some(10),
        ..Login::guest("channel_open_beyond_channel_max_closes_with_530")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .expect("handshake");
    client.open_channel(10).await;
    client.send(Frame::method(11, ChannelOpen::default())).await;
    // The code the server sends today: 530 NOT_ALLOWED, connection-level, as RabbitMQ's
    // reader does ("channel 11 exceeds channel_max 10" is a protocol_error(not_allowed)).
    let (code, text, class_id, method_id) = client.expect_close().await;
    assert_eq!(code, 530, "{text}");
    assert_eq!(
        (class_id, method_id),
        (20, 10),
        "failing method: channel.open"
    );
    client.close_ok().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_channel_id_can_be_opened_again() {
    let broker = TestBroker::start().await;
    let mut client =
        RawClient::connect(broker.addr(), "closed_channel_id_can_be_opened_again").await;
    client.open_channel(1).await;
    client
        .send(Frame::method(
            1,
            ChannelClose {
                reply_code: 200,
                reply_text: "bye".into(),
                ..Default::default()
            },
        ))
        .await;
    match client.recv_method().await {
        (1, Method::ChannelCloseOk(_)) => {}
        other => panic!("expected channel.close-ok on 1, got {other:?}"),
    }
    client.open_channel(1).await;
    client.close().await;
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Heartbeats
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sends_heartbeats_to_a_silent_client() {
    let broker = TestBroker::start().await;
    let login = Login {
        heartbeat: 1,
        ..Login::guest("server_sends_heartbeats_to_a_silent_client")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .expect("handshake");
    assert_eq!(client.recv().await, Some(Frame::Heartbeat));
    assert_eq!(client.recv().await, Some(Frame::Heartbeat));
    client.close().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_two_heartbeat_intervals() {
    let broker = TestBroker::start().await;
    let login = Login {
        heartbeat: 1,
        ..Login::guest("silent_client_is_dropped_after_two_heartbeat_intervals")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .expect("handshake");
    let started = Instant::now();
    // Heartbeats keep arriving, so bound the whole wait, not each read.
    tokio::time::timeout(WAIT, client.expect_eof())
        .await
        .expect("a client silent for two intervals must be dropped");
    let silent_for = started.elapsed();
    // Two intervals of 1 s; the monitor ticks every 0.5 s, so allow one tick of slack.
    assert!(
        silent_for >= Duration::from_millis(1500),
        "dropped too early: {silent_for:?}"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_answering_heartbeats_stays_connected() {
    let broker = TestBroker::start().await;
    let login = Login {
        heartbeat: 1,
        ..Login::guest("client_answering_heartbeats_stays_connected")
    };
    let (mut client, _) = RawClient::connect_with(broker.addr(), &login)
        .await
        .expect("handshake");
    // Answer each server heartbeat with one of ours for longer than the 2 s after which
    // a silent client is dropped.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        match client.recv().await {
            Some(Frame::Heartbeat) => client.send(Frame::Heartbeat).await,
            other => panic!("expected a heartbeat, got {other:?}"),
        }
    }
    client.open_channel(1).await;
    client.close().await;
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// Limits and shutdown
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_320_to_connected_clients() {
    let broker = TestBroker::start().await;
    let mut first = RawClient::connect(
        broker.addr(),
        "graceful_shutdown_sends_320_to_connected_clients",
    )
    .await;
    let mut second = RawClient::connect(
        broker.addr(),
        "graceful_shutdown_sends_320_to_connected_clients",
    )
    .await;
    second.open_channel(1).await;
    broker.shutdown();
    for client in [&mut first, &mut second] {
        let (code, text, class_id, method_id) = client.expect_close().await;
        assert_eq!(code, 320, "{text}");
        assert!(text.starts_with("CONNECTION_FORCED - "), "{text}");
        assert_eq!((class_id, method_id), (0, 0));
        client.close_ok().await;
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_when_a_client_never_answers_the_close() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(
        broker.addr(),
        "shutdown_completes_when_a_client_never_answers_the_close",
    )
    .await;
    broker.shutdown();
    let (code, ..) = client.expect_close().await;
    assert_eq!(code, 320);
    // No close-ok: the broker gives up after its close timeout and drops the socket.
    client.expect_eof().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_refuses_the_connection_over_the_limit() {
    let mut config = TestBroker::config();
    config.limits.max_connections = 1;
    // Long enough that a connection that was not refused would outlast WAIT and fail.
    config.limits.handshake_timeout = Duration::from_secs(60);
    let broker = TestBroker::start_with(config).await;
    let first = RawClient::connect(
        broker.addr(),
        "max_connections_refuses_the_connection_over_the_limit",
    )
    .await;
    let mut second = RawClient::tcp(broker.addr()).await;
    assert_eq!(second.read_to_eof().await, b"", "refused without a word");

    // The slot comes back once the first connection has ended. It is released just
    // after the socket closes, so poll for it (bounded).
    first.close().await;
    let uri = broker.uri();
    let mut admitted = None;
    for _ in 0..50 {
        match connect_lapin(
            &uri,
            "max_connections_refuses_the_connection_over_the_limit",
        )
        .await
        {
            Ok(conn) => {
                admitted = Some(conn);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let conn = admitted.expect("a connection is admitted once the first one ended");
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    broker.stop().await;
}

// ---------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_clients_and_stops_gracefully_on_sigterm() {
    let data_dir = tempfile::tempdir().expect("temporary data dir");
    let config = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/broker.toml"));
    let mut broker = common::binary::Binary::start(config, data_dir.path()).await;
    let addr = broker.addr;
    let uri = format!("amqp://guest:guest@{addr}/%2f");
    let conn = connect_lapin(
        &uri,
        "binary_serves_clients_and_stops_gracefully_on_sigterm",
    )
    .await
    .expect("connect to the binary");
    let _channel = conn.create_channel().await.expect("channel.open");
    let mut events = conn.events_listener();

    nix::sys::signal::kill(broker.pid(), nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");

    let code = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.next().await {
            if let lapin::Event::Error(error) = event {
                return lapin_reply_code(&error);
            }
        }
        None
    })
    .await
    .expect("lapin saw no connection error after SIGTERM");
    assert_eq!(code, Some(320), "the client is told CONNECTION_FORCED");

    broker.wait_for_log("broker stopped").await;
    let status = tokio::time::timeout(WAIT, broker.child.wait())
        .await
        .expect("warren did not exit within 10 s of SIGTERM")
        .expect("wait for warren");
    assert!(status.success(), "exit status {status}");
}
