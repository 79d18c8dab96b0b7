#!/usr/bin/env node
// Drive an amqplib (Node) session through the recording proxy.
//
// Needs amqplib installed OUTSIDE the repo, e.g.:
//     mkdir -p /tmp/amqpnode && cd /tmp/amqpnode && npm init -y && npm install amqplib
// Run (RabbitMQ on 127.0.0.1:5672, guest/guest):
//     cd crates/codec/tests/golden
//     python3 capture.py amqplib & sleep 0.5; \
//       NODE_PATH=/tmp/amqpnode/node_modules node capture_amqplib.js; wait
// The proxy writes amqplib.client.bin / amqplib.server.bin.
//
// Sequence (channel 1), deterministic by construction like capture_pika.py:
//   handshake with frameMax=4096 (the minimum RabbitMQ accepts), heartbeat=0
//   channel.open, confirm.select (createConfirmChannel)
//   exchange.declare warren.golden.ax (topic, durable)
//   queue.declare warren.golden.aq (durable, x-message-ttl, x-dead-letter-exchange, x-max-length)
//   queue.bind
//   5 x basic.publish: 3 with full properties and a header table using every
//     amqplib field type (b s I l d f D T t S F A x V), 1 empty body,
//     1 with 20000 bytes (= 5 body frames of <= 4088 bytes); waitForConfirms
//   basic.qos prefetch 3; basic.consume manual ack -> 3 deliveries
//   ack 1 -> delivery 4; ack 3 multiple -> delivery 5; basic.cancel; ack 5 multiple
//   publish 1 more (mandatory), confirmed; basic.get -> get-ok; ack; basic.get -> get-empty
//   queue.unbind, queue.delete, exchange.delete, channel.close, connection.close
const amqp = require('amqplib');

const PORT = process.argv[2] || 5680;
const X = 'warren.golden.ax', Q = 'warren.golden.aq';

function richProps(i) {
  return {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    headers: {
      byte: 7,                                   // 'b'
      short: 1000,                               // 's'
      int: 100000,                               // 'I'
      long: 2 ** 40,                             // 'l'
      neg: -5,                                   // 'b'
      double: 2.5,                               // 'd'
      float: { '!': 'float', value: 1.5 },       // 'f'
      decimal: { '!': 'decimal', value: { places: 2, digits: 314 } }, // 'D'
      ts: { '!': 'timestamp', value: 1700000000 }, // 'T'
      bool: false,                               // 't'
      str: 'hello wörld',                        // 'S'
      nested: { a: 1, b: 'two', c: { deep: true } }, // 'F'
      array: [1, 'x', true, { k: 'v' }, [2, 3]], // 'A'
      bytes: Buffer.from([0, 1, 255]),           // 'x'
      void: null,                                // 'V'
    },
    deliveryMode: 2,
    priority: 5,
    correlationId: `corr-${i}`,
    replyTo: 'golden.replies',
    expiration: '60000',
    messageId: `msg-${i}`,
    timestamp: 1700000000,
    type: 'golden.test',
    appId: 'warren-golden',
    userId: 'guest',
  };
}

async function main() {
  const conn = await amqp.connect(
    `amqp://guest:guest@127.0.0.1:${PORT}/?frameMax=4096&heartbeat=0`,
    { clientProperties: { connection_name: 'warren-golden-amqplib' } });
  const ch = await conn.createConfirmChannel();
  await ch.assertExchange(X, 'topic', { durable: true });
  await ch.assertQueue(Q, {
    durable: true,
    arguments: {
      'x-message-ttl': 60000,
      'x-dead-letter-exchange': 'warren.golden.dlx',
      'x-max-length': 100,
    },
  });
  await ch.bindQueue(Q, X, 'golden.#');

  const big = Buffer.alloc(20000);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  for (let i = 1; i <= 3; i++) {
    ch.publish(X, `golden.rich.${i}`, Buffer.from(`{"n":${i}}`), richProps(i));
    await ch.waitForConfirms();
  }
  ch.publish(X, 'golden.empty', Buffer.alloc(0), { contentType: 'text/plain' });
  await ch.waitForConfirms();
  ch.publish(X, 'golden.big', big, { deliveryMode: 1, messageId: 'big' });
  await ch.waitForConfirms();

  await ch.prefetch(3);
  const got = [];
  let waiter = null;
  const waitFor = (n) => new Promise((res) => {
    const check = () => (got.length >= n ? res() : (waiter = check));
    check();
  });
  const { consumerTag } = await ch.consume(Q, (m) => {
    got.push(m);
    if (waiter) { const w = waiter; waiter = null; w(); }
  }, { noAck: false, consumerTag: 'golden-ctag' });

  await waitFor(3);
  ch.ack(got[0]);
  await waitFor(4);
  ch.ack(got[2], true);
  await waitFor(5);
  if (!got[4].content.equals(big) || got[3].content.length !== 0) throw new Error('bad bodies');
  await ch.cancel(consumerTag);
  ch.ack(got[4], true);

  ch.publish(X, 'golden.get', Buffer.from('for basic.get'), { contentType: 'text/plain', mandatory: true });
  await ch.waitForConfirms();
  const m = await ch.get(Q, { noAck: false });
  if (!m || m.content.toString() !== 'for basic.get') throw new Error('bad get');
  ch.ack(m);
  const none = await ch.get(Q, { noAck: false });
  if (none !== false) throw new Error('expected get-empty');

  await ch.unbindQueue(Q, X, 'golden.#');
  await ch.deleteQueue(Q);
  await ch.deleteExchange(X);
  await ch.close();
  await conn.close();
  console.log('amqplib session done');
}

main().catch((e) => { console.error(e); process.exit(1); });
