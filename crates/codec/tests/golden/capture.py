#!/usr/bin/env python3
"""Recording TCP proxy for capturing golden AMQP 0-9-1 byte streams.

Listens on 127.0.0.1:5680 (override with --listen-port), forwards every
connection to RabbitMQ at 127.0.0.1:5672 (--upstream-host/--upstream-port)
and writes the raw bytes of each direction to files:

    <out-dir>/<name>.client.bin   bytes the client sent (starts with "AMQP\\0\\0\\9\\1")
    <out-dir>/<name>.server.bin   bytes the server sent

Only ONE client connection is recorded per run: the proxy accepts a single
connection, relays it until both sides have closed, writes the files and
exits.  (Use --keep-going to record consecutive connections as
<name>.<n>.client.bin ... instead.)

How to run (RabbitMQ must already be listening on 127.0.0.1:5672):

    # terminal 1
    python3 capture.py pika            # waits for one connection on :5680
    # terminal 2
    python3 capture_pika.py            # connects to 127.0.0.1:5680

or, in one go:

    python3 capture.py pika & sleep 0.5; python3 capture_pika.py; wait

Files are written to the directory containing this script unless --out-dir
is given.  The proxy adds no framing and does not alter any bytes.
"""
import argparse
import os
import socket
import threading


def pump(src, dst, buf):
    """Copy bytes src -> dst, appending them to buf, until EOF/error."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            buf.extend(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # Propagate the half-close so the other side sees EOF.
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def record_one(listener, args, name):
    conn, peer = listener.accept()
    up = socket.create_connection((args.upstream_host, args.upstream_port))
    for s in (conn, up):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c2s, s2c = bytearray(), bytearray()
    t1 = threading.Thread(target=pump, args=(conn, up, c2s))
    t2 = threading.Thread(target=pump, args=(up, conn, s2c))
    t1.start(); t2.start()
    t1.join(); t2.join()
    conn.close(); up.close()
    base = os.path.join(args.out_dir, name)
    with open(base + ".client.bin", "wb") as f:
        f.write(c2s)
    with open(base + ".server.bin", "wb") as f:
        f.write(s2c)
    print(f"recorded {peer}: client {len(c2s)} bytes, server {len(s2c)} bytes -> {base}.*.bin")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name", help="base name of the output files, e.g. 'pika'")
    ap.add_argument("--listen-port", type=int, default=5680)
    ap.add_argument("--upstream-host", default="127.0.0.1")
    ap.add_argument("--upstream-port", type=int, default=5672)
    ap.add_argument("--out-dir", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--keep-going", action="store_true",
                    help="record connections forever as <name>.<n>.*.bin")
    args = ap.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen_port))
    listener.listen(8)
    print(f"listening on 127.0.0.1:{args.listen_port} -> "
          f"{args.upstream_host}:{args.upstream_port}", flush=True)
    if args.keep_going:
        n = 0
        while True:
            record_one(listener, args, f"{args.name}.{n}")
            n += 1
    else:
        record_one(listener, args, args.name)
    listener.close()


if __name__ == "__main__":
    main()
