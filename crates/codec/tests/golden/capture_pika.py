#!/usr/bin/env python3
"""Drive a pika (BlockingConnection) session through the recording proxy.

Run (RabbitMQ on 127.0.0.1:5672, guest/guest, `pip install pika`):

    cd crates/codec/tests/golden
    python3 capture.py pika & sleep 0.5; python3 capture_pika.py; wait

The proxy writes pika.client.bin / pika.server.bin.  The sequence is made
deterministic (fixed names, fixed property values, prefetch-controlled
deliveries) so that the frame list in README.md is stable across re-captures;
only server-generated values (consumer tag, server properties) differ.

Sequence (channel 1):
  connection handshake (frame_max lowered to 65536 by the client)
  channel.open
  exchange.declare warren.golden.x (topic, durable)
  queue.declare warren.golden.q (durable, x-message-ttl, x-dead-letter-exchange, x-max-length)
  queue.bind warren.golden.q -> warren.golden.x 'golden.#'
  confirm.select
  5 x basic.publish (3 with full properties, 1 empty body, 1 with 200000 bytes
      = 4 body frames of <= 65528 bytes), each confirmed by basic.ack
  basic.qos prefetch_count=3
  basic.consume (manual ack) -> 3 x basic.deliver
  basic.ack tag 1            -> basic.deliver #4
  basic.ack tag 3 multiple   -> basic.deliver #5 (the 200000-byte body)
  basic.cancel / cancel-ok
  basic.ack tag 5 multiple
  basic.publish (mandatory) 1 more message, confirmed
  basic.get -> get-ok, basic.ack ; basic.get -> get-empty
  queue.unbind, queue.delete, exchange.delete
  channel.close, connection.close
"""
import datetime
import decimal
import sys

import pika

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 5680
X, Q, RK = "warren.golden.x", "warren.golden.q", "golden.rich.{}"


def rich_props(i):
    return pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={
            "int": 42,
            "neg": -7,
            "long": 2**40,
            "str": "hello wörld",
            "bool": True,
            "nested": {"a": 1, "b": "two", "c": {"deep": False}},
            "array": [1, "x", True, {"k": "v"}, [2, 3]],
            "decimal": decimal.Decimal("3.14"),
            "ts": datetime.datetime(2023, 11, 14, 22, 13, 20),
            "bytes": b"\x00\x01\xff",
            "void": None,
        },
        delivery_mode=2,
        priority=5,
        correlation_id=f"corr-{i}",
        reply_to="golden.replies",
        expiration="60000",
        message_id=f"msg-{i}",
        timestamp=1700000000,
        type="golden.test",
        app_id="warren-golden",
        user_id="guest",
        cluster_id="",
    )


def main():
    params = pika.ConnectionParameters(
        host="127.0.0.1", port=PORT,
        credentials=pika.PlainCredentials("guest", "guest"),
        frame_max=65536, channel_max=2047, heartbeat=60,
        client_properties={"connection_name": "warren-golden-pika"},
    )
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.exchange_declare(X, exchange_type="topic", durable=True)
    ch.queue_declare(Q, durable=True, arguments={
        "x-message-ttl": 60000,
        "x-dead-letter-exchange": "warren.golden.dlx",
        "x-max-length": 100,
    })
    ch.queue_bind(Q, X, routing_key="golden.#")
    ch.confirm_delivery()

    for i in range(1, 4):
        ch.basic_publish(X, RK.format(i), f'{{"n":{i}}}'.encode(), rich_props(i))
    ch.basic_publish(X, "golden.empty", b"",
                     pika.BasicProperties(content_type="text/plain"))
    big = bytes(i % 251 for i in range(200000))
    ch.basic_publish(X, "golden.big", big,
                     pika.BasicProperties(delivery_mode=1, message_id="big"))

    ch.basic_qos(prefetch_count=3)
    got = []
    ctag = ch.basic_consume(Q, lambda c, m, p, b: got.append((m, p, b)),
                            auto_ack=False, consumer_tag="golden-ctag")

    def wait_for(n):
        while len(got) < n:
            conn.process_data_events(time_limit=1)

    wait_for(3)
    ch.basic_ack(got[0][0].delivery_tag)
    wait_for(4)
    ch.basic_ack(got[2][0].delivery_tag, multiple=True)
    wait_for(5)
    assert got[4][2] == big and got[3][2] == b"", "unexpected bodies"
    ch.basic_cancel(ctag)
    ch.basic_ack(got[4][0].delivery_tag, multiple=True)

    ch.basic_publish(X, "golden.get", b"for basic.get",
                     pika.BasicProperties(content_type="text/plain"),
                     mandatory=True)
    m, p, b = ch.basic_get(Q, auto_ack=False)
    assert b == b"for basic.get", b
    ch.basic_ack(m.delivery_tag)
    m, p, b = ch.basic_get(Q, auto_ack=False)
    assert m is None

    ch.queue_unbind(Q, X, routing_key="golden.#")
    ch.queue_delete(Q)
    ch.exchange_delete(X)
    ch.close()
    conn.close()
    print("pika session done")


if __name__ == "__main__":
    main()
