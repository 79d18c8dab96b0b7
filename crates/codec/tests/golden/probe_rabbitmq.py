#!/usr/bin/env python3
"""Probe RabbitMQ's exact wire behaviour for protocol-error cases.

Run against a local RabbitMQ (127.0.0.1:5672, guest/guest, vhost '/'):

    python3 probe_rabbitmq.py              # all cases, markdown table on stdout
    python3 probe_rabbitmq.py --json       # same results as JSON
    python3 probe_rabbitmq.py -k heartbeat # only cases whose name contains 'heartbeat'

Every case opens a fresh TCP connection and hand-builds its frames (no client
library), so exactly the bytes listed in the "frame sent" column go on the
wire.  When the server sends connection.close the probe answers with
connection.close-ok and then records whether/when the socket is closed; when
it sends channel.close the probe answers channel.close-ok.  Results were
written up in RABBITMQ_BEHAVIOUR.md.  Needs only the Python standard library.
"""
import json
import socket
import struct
import sys
import time

HOST, PORT = "127.0.0.1", 5672
HDR = b"AMQP\x00\x00\x09\x01"
FRAME_END = b"\xce"
NAMES = {(10, 10): "connection.start", (10, 20): "connection.secure",
         (10, 30): "connection.tune", (10, 41): "connection.open-ok",
         (10, 50): "connection.close", (10, 51): "connection.close-ok",
         (10, 60): "connection.blocked", (10, 61): "connection.unblocked",
         (20, 11): "channel.open-ok", (20, 21): "channel.flow-ok",
         (20, 40): "channel.close", (20, 41): "channel.close-ok",
         (40, 11): "exchange.declare-ok", (40, 21): "exchange.delete-ok",
         (50, 11): "queue.declare-ok", (50, 21): "queue.bind-ok",
         (50, 31): "queue.purge-ok", (50, 41): "queue.delete-ok",
         (60, 11): "basic.qos-ok", (60, 21): "basic.consume-ok",
         (60, 31): "basic.cancel-ok", (60, 50): "basic.return",
         (60, 60): "basic.deliver", (60, 71): "basic.get-ok",
         (60, 72): "basic.get-empty", (60, 80): "basic.ack",
         (60, 120): "basic.nack", (85, 11): "confirm.select-ok"}


# ---------------------------------------------------------------- encoding
def shortstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">B", len(b)) + b


def longstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def value(v):
    if isinstance(v, bool):
        return b"t" + struct.pack(">B", v)
    if isinstance(v, int):
        return b"I" + struct.pack(">i", v) if -2**31 <= v < 2**31 else b"l" + struct.pack(">q", v)
    if isinstance(v, (str, bytes)):
        return b"S" + longstr(v)
    if isinstance(v, dict):
        return b"F" + table(v)
    raise TypeError(v)


def table(d):
    body = b"".join(shortstr(k) + value(v) for k, v in d.items())
    return struct.pack(">I", len(body)) + body


def frame(ftype, ch, payload, end=FRAME_END):
    return struct.pack(">BHI", ftype, ch, len(payload)) + payload + end


def method(ch, cid, mid, args=b""):
    return frame(1, ch, struct.pack(">HH", cid, mid) + args)


def header(ch, body_size, cid=60, flags=0, props=b""):
    return frame(2, ch, struct.pack(">HHQH", cid, 0, body_size, flags) + props)


def body(ch, data):
    return frame(3, ch, data)


# common methods
def channel_open(ch):
    return method(ch, 20, 10, shortstr(""))


def exchange_declare(ch, name, typ="direct", passive=False, durable=False):
    bits = passive | durable << 1
    return method(ch, 40, 10, struct.pack(">H", 0) + shortstr(name) + shortstr(typ)
                  + struct.pack(">B", bits) + table({}))


def queue_declare(ch, name, passive=False, durable=False, exclusive=False,
                  auto_delete=False, args=None):
    bits = passive | durable << 1 | exclusive << 2 | auto_delete << 3
    return method(ch, 50, 10, struct.pack(">H", 0) + shortstr(name)
                  + struct.pack(">B", bits) + table(args or {}))


def queue_bind(ch, q, x, rk):
    return method(ch, 50, 20, struct.pack(">H", 0) + shortstr(q) + shortstr(x)
                  + shortstr(rk) + b"\x00" + table({}))


def queue_delete(ch, q):
    return method(ch, 50, 40, struct.pack(">H", 0) + shortstr(q) + b"\x00")


def basic_publish(ch, x, rk, mandatory=False, immediate=False):
    return method(ch, 60, 40, struct.pack(">H", 0) + shortstr(x) + shortstr(rk)
                  + struct.pack(">B", mandatory | immediate << 1))


def basic_ack(ch, tag, multiple=False):
    return method(ch, 60, 80, struct.pack(">QB", tag, multiple))


def basic_qos(ch, size, count, glob=False):
    return method(ch, 60, 10, struct.pack(">IHB", size, count, glob))


# ---------------------------------------------------------------- decoding
def rd_shortstr(b, o):
    n = b[o]
    return b[o + 1:o + 1 + n].decode("utf-8", "replace"), o + 1 + n


def rd_longstr(b, o):
    (n,) = struct.unpack_from(">I", b, o)
    return b[o + 4:o + 4 + n], o + 4 + n


def rd_value(b, o):
    t = chr(b[o]); o += 1
    if t == "t": return bool(b[o]), o + 1
    if t == "b": return struct.unpack_from(">b", b, o)[0], o + 1
    if t == "B": return b[o], o + 1
    if t == "s": return struct.unpack_from(">h", b, o)[0], o + 2
    if t == "u": return struct.unpack_from(">H", b, o)[0], o + 2
    if t == "I": return struct.unpack_from(">i", b, o)[0], o + 4
    if t == "i": return struct.unpack_from(">I", b, o)[0], o + 4
    if t == "l": return struct.unpack_from(">q", b, o)[0], o + 8
    if t == "T": return ("timestamp", struct.unpack_from(">Q", b, o)[0]), o + 8
    if t == "f": return struct.unpack_from(">f", b, o)[0], o + 4
    if t == "d": return struct.unpack_from(">d", b, o)[0], o + 8
    if t == "D": return ("decimal", b[o], struct.unpack_from(">I", b, o + 1)[0]), o + 5
    if t == "S":
        s, o = rd_longstr(b, o)
        return s.decode("utf-8", "replace"), o
    if t == "x": return rd_longstr(b, o)
    if t == "F": return rd_table(b, o)
    if t == "V": return None, o
    if t == "A":
        (n,) = struct.unpack_from(">I", b, o); end = o + 4 + n; o += 4; arr = []
        while o < end:
            v, o = rd_value(b, o); arr.append(v)
        return arr, o
    raise ValueError(f"unknown field type {t!r}")


def rd_table(b, o):
    (n,) = struct.unpack_from(">I", b, o)
    end = o + 4 + n; o += 4; d = {}
    while o < end:
        k, o = rd_shortstr(b, o)
        d[k], o = rd_value(b, o)
    return d, o


class Conn:
    def __init__(self, timeout=5.0):
        self.s = socket.create_connection((HOST, PORT))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.t0 = time.monotonic()
        self.timeout = timeout
        self.start_args = None
        self.tune = None

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError as e:
            return f"send failed: {e}"

    def _fill(self, deadline):
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            self.eof = "reset"; return False
        if not d:
            self.eof = "eof"; return False
        self.buf += d
        return True

    def raw_until_eof(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        return self.buf

    def read_frame(self, timeout=None):
        """Return (type, ch, payload) or None on EOF/timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if len(self.buf) >= 7:
                t, ch, n = struct.unpack_from(">BHI", self.buf)
                if len(self.buf) >= 8 + n:
                    p = self.buf[7:7 + n]
                    assert self.buf[7 + n] == 0xCE, "server sent bad frame end"
                    self.buf = self.buf[8 + n:]
                    return t, ch, p
            if not self._fill(deadline):
                return None

    def read_method(self, timeout=None):
        while True:
            f = self.read_frame(timeout)
            if f is None:
                return None
            if f[0] == 1:
                cid, mid = struct.unpack_from(">HH", f[2])
                return f[1], cid, mid, f[2][4:]

    def handshake(self, heartbeat=0, frame_max=131072, channel_max=2047,
                  user="guest", password="guest", vhost="/", caps=True):
        self.send(HDR)
        ch, cid, mid, a = self.read_method()
        assert (cid, mid) == (10, 10), (cid, mid)
        vmaj, vmin = a[0], a[1]
        props, o = rd_table(a, 2)
        mechs, o = rd_longstr(a, o)
        locales, o = rd_longstr(a, o)
        self.start_args = dict(version_major=vmaj, version_minor=vmin,
                               server_properties=props,
                               mechanisms=mechs.decode(), locales=locales.decode())
        cprops = {"product": "warren-probe", "version": "0",
                  "platform": "Python"}
        if caps:
            cprops["capabilities"] = {
                "authentication_failure_close": True,
                "basic.nack": True, "connection.blocked": True,
                "consumer_cancel_notify": True, "publisher_confirms": True,
                "exchange_exchange_bindings": True,
                "per_consumer_qos": True}
        resp = b"\x00" + user.encode() + b"\x00" + password.encode()
        self.send(method(0, 10, 11, table(cprops) + shortstr("PLAIN")
                         + longstr(resp) + shortstr("en_US")))
        m = self.read_method()
        if m is None or (m[1], m[2]) != (10, 30):
            return m  # auth failure etc: caller inspects
        cmax, fmax, hb = struct.unpack_from(">HIH", m[3])
        self.tune = dict(channel_max=cmax, frame_max=fmax, heartbeat=hb)
        self.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat)))
        self.send(method(0, 10, 40, shortstr(vhost) + shortstr("") + b"\x00"))
        m = self.read_method()
        return m

    def open_channel(self, ch=1):
        self.send(channel_open(ch))
        m = self.read_method()
        assert m and (m[1], m[2]) == (20, 11), m
        return m

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def describe_method(m):
    ch, cid, mid, a = m
    name = NAMES.get((cid, mid), f"{cid}.{mid}")
    if (cid, mid) in ((10, 50), (20, 40)):
        code, = struct.unpack_from(">H", a)
        text, o = rd_shortstr(a, 2)
        kc, km = struct.unpack_from(">HH", a, o)
        return f"ch{ch} {name}(reply-code={code}, reply-text=`{text}`, class-id={kc}, method-id={km})"
    return f"ch{ch} {name}"


def outcome(c, timeout=5.0):
    """Collect the server's reaction: methods until a close, answer the close,
    then wait for EOF.  Returns a description string."""
    parts = []
    t_start = time.monotonic()
    while True:
        m = c.read_method(timeout)
        if m is None:
            if c.eof:
                parts.append(f"no frame; server closed the socket ({EOFKIND[c.eof]}) "
                             f"after {time.monotonic() - t_start:.1f}s")
            else:
                parts.append(f"nothing within {timeout:.0f}s (connection stays open)")
            break
        parts.append(describe_method(m))
        ch, cid, mid, _ = m
        if (cid, mid) == (10, 50):
            c.send(method(0, 10, 51))
            t = time.monotonic()
            rest = c.raw_until_eof(5)
            parts.append("-> client sends close-ok: " + (
                f"server closes socket ({EOFKIND[c.eof]}) after {time.monotonic() - t:.1f}s"
                if c.eof else "socket still open after 5s")
                + (f" (+{len(rest)} bytes)" if rest else ""))
            break
        if (cid, mid) == (20, 40):
            c.send(method(ch, 20, 41))
            # check the connection survives
            c.send(channel_open(ch))
            m2 = c.read_method(3)
            parts.append("-> client sends channel.close-ok and reopens the channel: "
                         + (describe_method(m2) if m2 else "no reply"))
            break
    return "; ".join(parts)


EOFKIND = {"eof": "FIN", "reset": "RST"}


def hx(b, limit=40):
    h = b[:limit].hex(" ")
    return h + (" ..." if len(b) > limit else "")


# ---------------------------------------------------------------- cases
CASES = []


def case(name, sent):
    def deco(fn):
        CASES.append((name, sent, fn))
        return fn
    return deco


def bad_header(hdr, wait=5.0):
    c = Conn()
    c.send(hdr)
    t = time.monotonic()
    data = c.raw_until_eof(wait)
    dt = time.monotonic() - t
    r = f"bytes back: {data!r}" if data else "no bytes back"
    r += (f"; server closes the socket ({EOFKIND[c.eof]}) after {dt:.1f}s" if c.eof
          else f"; socket still open after {wait:.0f}s")
    c.close()
    return r


for _hdr, _desc in [
        (b"AMQP\x00\x00\x09\x00", "AMQP 0-9-0"),
        (b"AMQP\x01\x01\x00\x09", "old-style AMQP 0-9 (class 1, instance 1)"),
        (b"AMQP\x01\x01\x08\x00", "old-style AMQP 0-8"),
        (b"AMQP\x00\x00\x08\x00", "AMQP 0-8 (new style)"),
        (b"AMQP\x01\x01\x00\x0a", "AMQP 0-10"),
        (b"AMQP\x00\x01\x00\x00", "AMQP 1.0"),
        (b"AMQP\x03\x01\x00\x00", "AMQP 1.0 SASL"),
        (b"AMQP\x00\x00\x09\x02", "AMQP 0-9-2 (unknown revision)"),
        (b"HTTP/1.1", "'HTTP/1.1'"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP GET request"),
        (b"AMQ", "3 bytes then silence (handshake timeout)")]:
    CASES.append((f"protocol header {_desc}", repr(_hdr),
                  (lambda h: (lambda: bad_header(h, 15 if len(h) < 8 else 5)))(_hdr)))


def after_handshake(payload_fn, chans=(), frame_max=131072, channel_max=2047,
                    timeout=5.0, ping=False):
    def run():
        c = Conn()
        m = c.handshake(frame_max=frame_max, channel_max=channel_max)
        assert m and (m[1], m[2]) == (10, 41), m
        for ch in chans:
            c.open_channel(ch)
        for d in payload_fn(c):
            c.send(d)
        if ping:  # liveness check: open a fresh channel 100 after the payload
            time.sleep(0.3)
            c.send(channel_open(100))
        r = outcome(c, timeout)
        c.close()
        return r
    return run


def add(name, sent, payload_fn, **kw):
    CASES.append((name, sent, after_handshake(payload_fn, **kw)))


add("unknown class id 999 (ch 1)", "method ch1 class 999 method 10, no args",
    lambda c: [method(1, 999, 10)], chans=[1])
add("unknown class id 999 (ch 0)", "method ch0 class 999 method 10",
    lambda c: [method(0, 999, 10)])
add("known class, unknown method (queue 50.99)", "method ch1 50.99, no args",
    lambda c: [method(1, 50, 99)], chans=[1])
add("connection class, unknown method (10.99) on ch0", "method ch0 10.99",
    lambda c: [method(0, 10, 99)])
add("truncated method args (queue.declare with 2 bytes of args)", "method ch1 50.10 args 00 00",
    lambda c: [method(1, 50, 10, b"\x00\x00")], chans=[1])
add("unknown frame type 5", "frame type 5 ch0 size 4 payload 00000000 CE",
    lambda c: [frame(5, 0, b"\x00" * 4)])
add("unknown frame type 5 on ch 1", "frame type 5 ch1 size 4",
    lambda c: [frame(5, 1, b"\x00" * 4)], chans=[1])
add("bad frame-end byte", "channel.open ch1 with frame-end 0x00",
    lambda c: [frame(1, 1, struct.pack(">HH", 20, 10) + shortstr(""), end=b"\x00")])
add("bad frame-end byte on heartbeat", "frame 08 0000 00000000 then 0xFF",
    lambda c: [frame(8, 0, b"", end=b"\xff")])
for _n in (4088, 4089, 4096, 4097):
    add(f"frame-max boundary: frame_max 4096, body frame payload {_n} (frame {_n + 8} bytes)",
        f"open ch1; publish to amq.direct rk 'nowhere'; header body-size {_n}; one body frame of {_n} bytes; then channel.open ch100",
        (lambda n: lambda c: [basic_publish(1, "amq.direct", "nowhere"), header(1, n),
                              body(1, b"x" * n)])(_n),
        chans=[1], frame_max=4096, timeout=2, ping=True)
def padded_declare(n):
    """queue.declare (auto-delete) whose method-frame payload is exactly n bytes."""
    base = struct.pack(">HHH", 50, 10, 0) + shortstr("warren.probe.big") + b"\x08"
    pad = n - len(base) - len(table({"x-pad": ""}))
    return frame(1, 1, base + table({"x-pad": "p" * pad}))


for _n in (4096, 4097):
    add(f"frame-max boundary: frame_max 4096, method frame payload {_n}",
        f"queue.declare ch1 padded (x-pad arg) to a {_n}-byte payload",
        (lambda n: lambda c: [padded_declare(n)])(_n), chans=[1], frame_max=4096, timeout=2)
add("frame larger than frame-max (10000 > 4096), complete frame",
    "open ch1; publish; header size 10000; one body frame of 10000 bytes",
    lambda c: [basic_publish(1, "amq.direct", "nowhere"), header(1, 10000),
               body(1, b"x" * 10000)], chans=[1], frame_max=4096)
add("method frame larger than default frame-max (200000 > 131072)",
    "method ch0 frame size 200000 (10.99 + padding)",
    lambda c: [method(0, 10, 99, b"\x00" * 199996)])


def oversized_header_only():
    c = Conn()
    c.handshake(frame_max=4096)
    c.send(struct.pack(">BHI", 3, 1, 10000))  # only the 7-byte frame header
    first = outcome(c, 3)
    c.close()
    return "7-byte header only, no payload sent: " + first


CASES.append(("does RabbitMQ wait for the whole oversized frame?",
              "frame header only: 03 0001 00002710 (body, ch1, size 10000), frame_max 4096, no payload",
              oversized_header_only))

add("non-connection method on channel 0 (exchange.declare)", "exchange.declare on ch0",
    lambda c: [exchange_declare(0, "x0")])
add("channel.open on channel 0", "channel.open on ch0",
    lambda c: [channel_open(0)])
add("channel.open on channel number > channel-max (negotiated 10, open ch 11)",
    "tune-ok channel_max=10; channel.open ch11; then channel.open ch100",
    lambda c: [channel_open(11)], channel_max=10, timeout=2, ping=True)
add("channel.open of the 11th channel with channel-max 10",
    "tune-ok channel_max=10; channel.open ch1..ch10 (all open-ok); channel.open ch11",
    lambda c: [channel_open(11)], chans=range(1, 11), channel_max=10)
add("channel.open on channel 2048 with channel-max 2047", "channel.open ch2048",
    lambda c: [channel_open(2048)], timeout=2)
add("channel.open on channel 65535 with channel-max 2047", "channel.open ch65535",
    lambda c: [channel_open(65535)], timeout=2)
add("channel.open twice on the same channel", "channel.open ch1 (already open)",
    lambda c: [channel_open(1)], chans=[1])
add("method on a never-opened channel", "queue.declare on ch5 (never opened)",
    lambda c: [queue_declare(5, "q")])
add("channel.close on a never-opened channel", "channel.close(200) on ch5",
    lambda c: [method(5, 20, 40, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0))])
add("connection method on channel 1", "connection.tune-ok on ch1",
    lambda c: [method(1, 10, 31, struct.pack(">HIH", 0, 131072, 0))], chans=[1])
add("content header without basic.publish", "header frame ch1 class 60 size 5",
    lambda c: [header(1, 5)], chans=[1])
add("content header on channel 0", "header frame ch0 class 60 size 5",
    lambda c: [header(0, 5)])
add("body frame without publish", "body frame ch1 'hello'",
    lambda c: [body(1, b"hello")], chans=[1])
add("body frame when header expected", "basic.publish ch1; body frame 'hello'",
    lambda c: [basic_publish(1, "amq.direct", "rk"), body(1, b"hello")], chans=[1])
add("method frame when header expected", "basic.publish ch1; queue.declare ch1",
    lambda c: [basic_publish(1, "amq.direct", "rk"), queue_declare(1, "")], chans=[1])
add("method frame when body expected", "basic.publish; header size 5; queue.declare",
    lambda c: [basic_publish(1, "amq.direct", "rk"), header(1, 5), queue_declare(1, "")], chans=[1])
add("body larger than header's body-size", "publish; header body-size 3; body frame 'hello' (5 bytes); then queue.declare on ch1",
    lambda c: [basic_publish(1, "amq.direct", "rk"), header(1, 3), body(1, b"hello"),
               queue_declare(1, "")], chans=[1])
add("content header with wrong class id (50)", "publish; header class 50 size 0",
    lambda c: [basic_publish(1, "amq.direct", "rk"), header(1, 0, cid=50)], chans=[1])
add("heartbeat on non-zero channel", "frame 08 0001 00000000 CE",
    lambda c: [frame(8, 1, b"")], chans=[1])
add("heartbeat with non-empty payload", "frame 08 0000 00000002 0000 CE",
    lambda c: [frame(8, 0, b"\x00\x00")])
add("basic.publish to nonexistent exchange", "publish ch1 exchange 'x' rk 'rk'; header size 0",
    lambda c: [basic_publish(1, "x", "rk"), header(1, 0)], chans=[1])
add("basic.publish mandatory, unroutable", "publish amq.direct rk 'nowhere' mandatory; header size 2; body 'hi'",
    lambda c: [basic_publish(1, "amq.direct", "nowhere", mandatory=True),
               header(1, 2), body(1, b"hi")], chans=[1], timeout=2)
add("basic.publish with immediate=true", "publish amq.direct immediate=1; header 0",
    lambda c: [basic_publish(1, "amq.direct", "rk", immediate=True), header(1, 0)], chans=[1])
add("queue.declare passive of missing queue", "queue.declare passive 'missing.q'",
    lambda c: [queue_declare(1, "missing.q", passive=True)], chans=[1])
add("exchange.declare passive of missing exchange", "exchange.declare passive 'missing.x'",
    lambda c: [exchange_declare(1, "missing.x", passive=True)], chans=[1])
add("basic.ack of unknown delivery tag", "basic.ack tag 42",
    lambda c: [basic_ack(1, 42)], chans=[1])
add("basic.ack multiple of unknown tag", "basic.ack tag 42 multiple",
    lambda c: [basic_ack(1, 42, True)], chans=[1], timeout=2)
add("basic.ack tag 0 multiple (nothing outstanding)", "basic.ack tag 0 multiple; then channel.open ch100",
    lambda c: [basic_ack(1, 0, True)], chans=[1], timeout=2, ping=True)
add("basic.ack tag 0 single (nothing outstanding)", "basic.ack tag 0 multiple=0",
    lambda c: [basic_ack(1, 0, False)], chans=[1], timeout=2)
add("basic.nack of unknown delivery tag", "basic.nack tag 9 requeue",
    lambda c: [method(1, 60, 120, struct.pack(">QB", 9, 2))], chans=[1])
add("basic.reject of unknown delivery tag", "basic.reject tag 7 requeue",
    lambda c: [method(1, 60, 90, struct.pack(">QB", 7, 1))], chans=[1])
add("basic.qos with prefetch_size != 0", "basic.qos size=1000 count=10",
    lambda c: [basic_qos(1, 1000, 10)], chans=[1])
add("exchange.declare amq.foo", "exchange.declare 'amq.foo' direct",
    lambda c: [exchange_declare(1, "amq.foo")], chans=[1])
add("exchange.declare amq.direct (existing, same type, durable)", "exchange.declare 'amq.direct' direct durable",
    lambda c: [exchange_declare(1, "amq.direct", durable=True)], chans=[1], timeout=2)
add("exchange.declare of unknown type", "exchange.declare 'x.badtype' type 'foo'",
    lambda c: [exchange_declare(1, "x.badtype", typ="foo")], chans=[1])
add("exchange redeclare with different type", "exchange.declare 'amq.direct' type 'fanout' durable",
    lambda c: [exchange_declare(1, "amq.direct", typ="fanout", durable=True)], chans=[1])
add("exchange.delete of amq.direct", "exchange.delete 'amq.direct'",
    lambda c: [method(1, 40, 20, struct.pack(">H", 0) + shortstr("amq.direct") + b"\x00")], chans=[1])
add("exchange.declare of default exchange ''", "exchange.declare '' direct",
    lambda c: [exchange_declare(1, "")], chans=[1])
add("queue.declare amq.foo", "queue.declare 'amq.foo'",
    lambda c: [queue_declare(1, "amq.foo")], chans=[1])


def redeclare_durable():
    c = Conn()
    c.handshake(); c.open_channel(1)
    c.send(queue_declare(1, "warren.probe.q", durable=False, auto_delete=True))
    m = c.read_method()
    assert (m[1], m[2]) == (50, 11)
    c.send(queue_declare(1, "warren.probe.q", durable=True, auto_delete=True))
    r = outcome(c)
    c.close()
    return r


CASES.append(("queue redeclare with different durable flag",
              "queue.declare 'warren.probe.q' auto_delete; then again with durable=1",
              redeclare_durable))


def redeclare_args():
    c = Conn()
    c.handshake(); c.open_channel(1)
    c.send(queue_declare(1, "warren.probe.q2", auto_delete=True, args={"x-max-length": 10}))
    m = c.read_method()
    assert (m[1], m[2]) == (50, 11)
    c.send(queue_declare(1, "warren.probe.q2", auto_delete=True, args={"x-max-length": 20}))
    r = outcome(c)
    c.close()
    return r


CASES.append(("queue redeclare with different x-max-length",
              "queue.declare 'warren.probe.q2' x-max-length 10; again with 20",
              redeclare_args))

add("queue.declare with bad x-message-ttl type", "queue.declare 'warren.probe.q3' x-message-ttl='abc'",
    lambda c: [queue_declare(1, "warren.probe.q3", auto_delete=True, args={"x-message-ttl": "abc"})], chans=[1])
add("queue.bind to the default exchange", "queue.declare 'warren.probe.qb'; queue.bind it to '' rk 'k'",
    lambda c: [queue_declare(1, "warren.probe.qb", auto_delete=True),
               queue_bind(1, "warren.probe.qb", "", "k")], chans=[1])
add("queue.bind to a missing exchange", "queue.declare 'warren.probe.qc'; queue.bind it to 'missing.x'",
    lambda c: [queue_declare(1, "warren.probe.qc", auto_delete=True),
               queue_bind(1, "warren.probe.qc", "missing.x", "k")], chans=[1])
add("queue.bind of a missing queue", "queue.bind 'missing.q' to amq.direct",
    lambda c: [queue_bind(1, "missing.q", "amq.direct", "k")], chans=[1])
add("basic.consume on missing queue", "basic.consume 'missing.q'",
    lambda c: [method(1, 60, 20, struct.pack(">H", 0) + shortstr("missing.q") + shortstr("")
                      + b"\x00" + table({}))], chans=[1])
add("queue.delete of missing queue", "queue.delete 'missing.q'",
    lambda c: [queue_delete(1, "missing.q")], chans=[1], timeout=2)
add("queue.purge of missing queue", "queue.purge 'missing.q'",
    lambda c: [method(1, 50, 30, struct.pack(">H", 0) + shortstr("missing.q") + b"\x00")], chans=[1])
add("basic.get on missing queue", "basic.get 'missing.q'",
    lambda c: [method(1, 60, 70, struct.pack(">H", 0) + shortstr("missing.q") + b"\x00")], chans=[1])
add("tx.commit without tx.select", "tx.commit",
    lambda c: [method(1, 90, 20)], chans=[1])
add("confirm.select after tx.select", "tx.select; confirm.select",
    lambda c: [method(1, 90, 10), method(1, 85, 10, b"\x00")], chans=[1])
add("access.request (class 30)", "access.request realm '/data'",
    lambda c: [method(1, 30, 10, shortstr("/data") + b"\x00")], chans=[1], timeout=2)
add("publish with reply_to amq.rabbitmq.reply-to, no consumer",
    "publish amq.direct; header with reply-to flag 0x0200 'amq.rabbitmq.reply-to'",
    lambda c: [basic_publish(1, "amq.direct", "rk"),
               header(1, 0, flags=0x0200, props=shortstr("amq.rabbitmq.reply-to"))], chans=[1])
add("publish with user_id not matching the login",
    "publish amq.direct; header user-id 'bob' (flag 0x0010)",
    lambda c: [basic_publish(1, "amq.direct", "rk"),
               header(1, 0, flags=0x0010, props=shortstr("bob"))], chans=[1])


def wrong_password(caps):
    def run():
        c = Conn()
        t = time.monotonic()
        m = c.handshake(password="wrong", caps=caps)
        if m is None:
            r = (f"no frame; server closes the socket ({EOFKIND[c.eof]}) after "
                 f"{time.monotonic() - t:.1f}s" if c.eof else "nothing within 5s")
        else:
            r = describe_method(m) + f" (after {time.monotonic() - t:.1f}s)"
            if (m[1], m[2]) == (10, 50):
                c.send(method(0, 10, 51))
                t = time.monotonic()
                c.raw_until_eof(5)
                r += ("; -> client sends close-ok: " + (
                    f"server closes socket ({EOFKIND[c.eof]}) after {time.monotonic() - t:.1f}s"
                    if c.eof else "still open"))
        c.close()
        return r
    return run


CASES.append(("wrong password, client capability authentication_failure_close=true",
              "start-ok PLAIN \\0guest\\0wrong", wrong_password(True)))
CASES.append(("wrong password, no capabilities table",
              "start-ok PLAIN \\0guest\\0wrong", wrong_password(False)))


def unknown_mechanism():
    c = Conn()
    c.send(HDR)
    c.read_method()
    c.send(method(0, 10, 11, table({}) + shortstr("FOO") + longstr(b"x") + shortstr("en_US")))
    r = outcome(c)
    c.close()
    return r


CASES.append(("unknown SASL mechanism", "start-ok mechanism 'FOO'", unknown_mechanism))


def bad_vhost():
    c = Conn()
    c.send(HDR); c.read_method()
    c.send(method(0, 10, 11, table({}) + shortstr("PLAIN") + longstr(b"\x00guest\x00guest")
                  + shortstr("en_US")))
    c.read_method()
    c.send(method(0, 10, 31, struct.pack(">HIH", 2047, 131072, 0)))
    c.send(method(0, 10, 40, shortstr("nope") + shortstr("") + b"\x00"))
    r = outcome(c)
    c.close()
    return r


CASES.append(("connection.open to a nonexistent vhost", "connection.open vhost 'nope'", bad_vhost))


def tune_ok_case(channel_max, frame_max, heartbeat=0, then=None):
    def run():
        c = Conn()
        c.send(HDR); c.read_method()
        c.send(method(0, 10, 11, table({}) + shortstr("PLAIN") + longstr(b"\x00guest\x00guest")
                      + shortstr("en_US")))
        c.read_method()
        c.send(method(0, 10, 31, struct.pack(">HIH", channel_max, frame_max, heartbeat)))
        c.send(then if then is not None else
               method(0, 10, 40, shortstr("/") + shortstr("") + b"\x00"))
        r = outcome(c)
        c.close()
        return r
    return run


CASES.append(("tune-ok frame_max below 4096", "tune-ok channel_max=2047 frame_max=1024; connection.open",
              tune_ok_case(2047, 1024)))
CASES.append(("tune-ok frame_max 0 (no limit)", "tune-ok channel_max=2047 frame_max=0; connection.open",
              tune_ok_case(2047, 0)))
CASES.append(("tune-ok frame_max above server's 131072", "tune-ok channel_max=2047 frame_max=1048576; connection.open",
              tune_ok_case(2047, 1 << 20)))
CASES.append(("tune-ok channel_max above server's 2047", "tune-ok channel_max=4000; connection.open",
              tune_ok_case(4000, 131072)))
CASES.append(("tune-ok channel_max 0 (no limit)", "tune-ok channel_max=0 frame_max=131072; connection.open",
              tune_ok_case(0, 131072)))
CASES.append(("channel.open before connection.open", "tune-ok (2047/131072/0); channel.open ch1",
              tune_ok_case(2047, 131072, then=channel_open(1))))


def wrong_method_in_handshake():
    c = Conn()
    c.send(HDR); c.read_method()
    c.send(method(0, 10, 40, shortstr("/") + shortstr("") + b"\x00"))
    r = outcome(c)
    c.close()
    return r


CASES.append(("connection.open instead of start-ok", "connection.open right after start",
              wrong_method_in_handshake))


def no_close_ok(payload, chans=()):
    def run():
        c = Conn()
        c.handshake()
        for ch in chans:
            c.open_channel(ch)
        c.send(payload)
        m = c.read_method()
        t = time.monotonic()
        c.raw_until_eof(40)
        dt = time.monotonic() - t
        return (describe_method(m) + "; client never sends close-ok -> "
                + (f"server closes the socket ({EOFKIND[c.eof]}) {dt:.1f}s after sending connection.close"
                   if c.eof else "still open after 40s"))
    return run


CASES.append(("connection error (channel.open twice), client never answers close-ok",
              "channel.open ch1 twice, then silence", no_close_ok(channel_open(1), chans=[1])))
CASES.append(("frame error (unknown frame type), client never answers close-ok",
              "frame type 5, then silence", no_close_ok(frame(5, 0, b"\x00" * 4))))
CASES.append(("frame error (bad frame-end), client never answers close-ok",
              "channel.open ch1 with frame-end 0x00, then silence",
              no_close_ok(frame(1, 1, struct.pack(">HH", 20, 10) + shortstr(""), end=b"\x00"))))
CASES.append(("frame error (frame too large), client never answers close-ok",
              "only a 7-byte body-frame header announcing 200000 bytes, then silence",
              no_close_ok(struct.pack(">BHI", 3, 1, 200000))))


def heartbeat_case(hb, listen=20, client_hb_at=None):
    def run():
        c = Conn()
        c.handshake(heartbeat=hb)
        t0 = time.monotonic()
        events = []
        if client_hb_at is not None:
            import threading
            def beat():
                time.sleep(client_hb_at)
                c.send(frame(8, 0, b""))
            threading.Thread(target=beat, daemon=True).start()
            events.append(f"(client HB@{client_hb_at:.1f}s)")
        while time.monotonic() - t0 < listen:
            f = c.read_frame(listen - (time.monotonic() - t0))
            if f is None:
                break
            t, ch, p = f
            dt = time.monotonic() - t0
            if t == 8:
                events.append(f"HB@{dt:.1f}s")
            else:
                events.append(f"{describe_method((ch, *struct.unpack_from('>HH', p), p[4:]))}@{dt:.1f}s")
        end = time.monotonic() - t0
        tail = (f"no close frame; server closes the socket ({EOFKIND[c.eof]}) at {end:.1f}s"
                if c.eof else f"still open at {end:.1f}s")
        c.close()
        return f"tune heartbeat={hb} from client, silent client: " + ", ".join(events) + "; " + tail
    return run


CASES.append(("heartbeat 2s, silent client", "tune-ok heartbeat=2, then nothing", heartbeat_case(2)))
CASES.append(("heartbeat 1s, silent client", "tune-ok heartbeat=1, then nothing", heartbeat_case(1)))
CASES.append(("heartbeat 2s, client sends one heartbeat at 3.5s then goes silent",
              "tune-ok heartbeat=2; one heartbeat frame at t=3.5s", heartbeat_case(2, client_hb_at=3.5)))
CASES.append(("heartbeat 5s, silent client", "tune-ok heartbeat=5, then nothing", heartbeat_case(5, 30)))


def server_start():
    c = Conn()
    c.handshake()
    r = json.dumps({"start": c.start_args, "tune": c.tune}, default=str, indent=1,
                   ensure_ascii=False)
    c.close()
    return r


CASES.append(("server connection.start / connection.tune", "protocol header; start-ok; (read start and tune)",
              server_start))


def cleanup():
    """Delete the queues the probes declared (they are auto-delete but never
    get a consumer, so RabbitMQ would keep them)."""
    c = Conn()
    c.handshake()
    c.open_channel(1)
    for q in ("warren.probe.q", "warren.probe.q2", "warren.probe.q3", "warren.probe.qb",
              "warren.probe.qc", "warren.probe.big"):
        c.send(queue_delete(1, q))
        c.read_method()
    c.send(method(0, 10, 50, struct.pack(">H", 200) + shortstr("bye") + struct.pack(">HH", 0, 0)))
    c.read_method()
    c.close()


def md_reply(r):
    """Compress a reply description for the markdown table (same facts)."""
    import re
    r = re.sub(r"ch(\d+) (connection\.close|channel\.close)\(reply-code=(\d+), reply-text=`(.*?)`, "
               r"class-id=(\d+), method-id=(\d+)\)",
               lambda m: f"**{m.group(2)}** on ch{m.group(1)}: code {m.group(3)}, text `{m.group(4)}`, "
                         f"class-id {m.group(5)}, method-id {m.group(6)}", r)
    r = r.replace("-> client sends close-ok: server closes socket", "→ after client's close-ok the server closes the socket")
    r = r.replace("-> client sends channel.close-ok and reopens the channel: ", "→ after channel.close-ok, re-opening the channel gets ")
    return r.replace("|", "\\|").replace("\n", " ")


def main():
    sel = None
    if "-k" in sys.argv:
        sel = sys.argv[sys.argv.index("-k") + 1]
    results = []
    for name, sent, fn in CASES:
        if sel and sel not in name:
            continue
        try:
            r = fn()
        except Exception as e:  # noqa
            r = f"PROBE ERROR: {type(e).__name__}: {e}"
        results.append({"case": name, "sent": sent, "reply": r})
        print(f"- {name}: {r}", file=sys.stderr, flush=True)
    cleanup()
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1, ensure_ascii=False))
        return
    print("| case | frame sent | RabbitMQ's exact reply |\n| --- | --- | --- |")
    extra = []
    for r in results:
        if r["reply"].startswith("{"):
            extra.append(r)
            continue
        sent = r["sent"].replace("|", "\\|")
        print(f"| {r['case']} | {sent} | {md_reply(r['reply'])} |")
    for r in extra:
        print(f"\n{r['case']}:\n\n```json\n{r['reply']}\n```")


if __name__ == "__main__":
    main()
