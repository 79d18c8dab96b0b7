#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use bytes::BytesMut;
use warren_codec::*;
#[test]
fn dump() {
    for name in [
        "pika.client",
        "pika.server",
        "amqplib.client",
        "amqplib.server",
    ] {
        let data = std::fs::read(format!(
            "{}/tests/golden/{name}.bin",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut buf = BytesMut::from(&data[if name.ends_with("client") { 8 } else { 0 }..]);
        println!("==== {name}");
        while !buf.is_empty() {
            match decode_frame(&mut buf, 0) {
                Ok(Some(Frame::Body { channel, body })) => println!(
                    "{channel} body {} {:?}",
                    body.len(),
                    &body[..body.len().min(16)]
                ),
                Ok(Some(f)) => println!("{f:?}"),
                other => {
                    println!("STOP {other:?}");
                    break;
                }
            }
        }
    }
}
