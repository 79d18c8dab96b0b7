#!/usr/bin/env python3
"""Frame-splitter sanity check for the golden .bin captures.

Usage:  python3 split_frames.py [FILE.bin ...]     (default: every *.bin here)
        python3 split_frames.py --markdown         (the README summary block)

Each file is parsed as a plain sequence of AMQP 0-9-1 frames
    type:u8  channel:u16  size:u32  payload[size]  0xCE
after skipping the 8-byte protocol header "AMQP\\x00\\x00\\x09\\x01" on
*.client.bin files.  The script fails (exit 1) on a bad frame-end octet,
a truncated frame or trailing garbage, and prints per file:
  * frame count by type (1 method, 2 header, 3 body, 8 heartbeat),
  * every frame in order: method frames as channel:class.method(name),
    header frames as channel:H(class-id, body-size), body frames as
    channel:B(len), heartbeats as channel:HB.
The Rust tests can assert against these lists (see README.md).
"""
import glob
import os
import struct
import sys

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE
NAMES = {
    (10, 10): "connection.start", (10, 11): "connection.start-ok",
    (10, 20): "connection.secure", (10, 21): "connection.secure-ok",
    (10, 30): "connection.tune", (10, 31): "connection.tune-ok",
    (10, 40): "connection.open", (10, 41): "connection.open-ok",
    (10, 50): "connection.close", (10, 51): "connection.close-ok",
    (10, 60): "connection.blocked", (10, 61): "connection.unblocked",
    (10, 70): "connection.update-secret", (10, 71): "connection.update-secret-ok",
    (20, 10): "channel.open", (20, 11): "channel.open-ok",
    (20, 20): "channel.flow", (20, 21): "channel.flow-ok",
    (20, 40): "channel.close", (20, 41): "channel.close-ok",
    (30, 10): "access.request", (30, 11): "access.request-ok",
    (40, 10): "exchange.declare", (40, 11): "exchange.declare-ok",
    (40, 20): "exchange.delete", (40, 21): "exchange.delete-ok",
    (40, 30): "exchange.bind", (40, 31): "exchange.bind-ok",
    (40, 40): "exchange.unbind", (40, 51): "exchange.unbind-ok",
    (50, 10): "queue.declare", (50, 11): "queue.declare-ok",
    (50, 20): "queue.bind", (50, 21): "queue.bind-ok",
    (50, 30): "queue.purge", (50, 31): "queue.purge-ok",
    (50, 40): "queue.delete", (50, 41): "queue.delete-ok",
    (50, 50): "queue.unbind", (50, 51): "queue.unbind-ok",
    (60, 10): "basic.qos", (60, 11): "basic.qos-ok",
    (60, 20): "basic.consume", (60, 21): "basic.consume-ok",
    (60, 30): "basic.cancel", (60, 31): "basic.cancel-ok",
    (60, 40): "basic.publish", (60, 50): "basic.return",
    (60, 60): "basic.deliver", (60, 70): "basic.get",
    (60, 71): "basic.get-ok", (60, 72): "basic.get-empty",
    (60, 80): "basic.ack", (60, 90): "basic.reject",
    (60, 100): "basic.recover-async", (60, 110): "basic.recover",
    (60, 111): "basic.recover-ok", (60, 120): "basic.nack",
    (85, 10): "confirm.select", (85, 11): "confirm.select-ok",
    (90, 10): "tx.select", (90, 11): "tx.select-ok",
    (90, 20): "tx.commit", (90, 21): "tx.commit-ok",
    (90, 30): "tx.rollback", (90, 31): "tx.rollback-ok",
}


def split(data, client_side):
    """Return list of (type, channel, payload). Raises ValueError on damage."""
    pos = 0
    if client_side:
        if data[:8] != PROTOCOL_HEADER:
            raise ValueError(f"bad protocol header {data[:8]!r}")
        pos = 8
    frames = []
    while pos < len(data):
        if len(data) - pos < 7:
            raise ValueError(f"truncated frame header at offset {pos}")
        ftype, chan, size = struct.unpack_from(">BHI", data, pos)
        end = pos + 7 + size
        if end >= len(data):
            raise ValueError(f"truncated frame at offset {pos} (size {size})")
        if data[end] != FRAME_END:
            raise ValueError(f"bad frame-end 0x{data[end]:02x} at offset {end}")
        frames.append((ftype, chan, data[pos + 7:end]))
        pos = end + 1
    return frames


def describe(ftype, chan, payload):
    if ftype == 1:
        cid, mid = struct.unpack_from(">HH", payload)
        return f"{chan}:{cid}.{mid}({NAMES.get((cid, mid), '?')})"
    if ftype == 2:
        cid, weight, bsize, flags = struct.unpack_from(">HHQH", payload)
        return f"{chan}:H({cid},{bsize})"
    if ftype == 3:
        return f"{chan}:B({len(payload)})"
    if ftype == 8:
        return f"{chan}:HB"
    return f"{chan}:?type{ftype}"


def summarize(path):
    with open(path, "rb") as f:
        data = f.read()
    frames = split(data, path.endswith(".client.bin"))
    counts = {}
    for t, _, _ in frames:
        counts[t] = counts.get(t, 0) + 1
    tnames = {1: "method", 2: "header", 3: "body", 8: "heartbeat"}
    return {
        "file": os.path.basename(path),
        "bytes": len(data),
        "frames": len(frames),
        "counts": ", ".join(f"{tnames.get(t, t)}={n}" for t, n in sorted(counts.items())),
        "seq": [describe(*fr) for fr in frames],
        "methods": [describe(*fr).split(":", 1)[1].split("(")[0]
                    for fr in frames if fr[0] == 1],
    }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    md = "--markdown" in sys.argv
    here = os.path.dirname(os.path.abspath(__file__))
    files = args or sorted(glob.glob(os.path.join(here, "*.bin")))
    ok = True
    for p in files:
        try:
            s = summarize(p)
        except ValueError as e:
            print(f"{os.path.basename(p)}: ERROR {e}")
            ok = False
            continue
        if md:
            print(f"#### `{s['file']}` ({s['bytes']} bytes, {s['frames']} frames: {s['counts']})\n")
            print("Method class.method ids in order:\n")
            print("```\n" + " ".join(s["methods"]) + "\n```\n")
            print("All frames in order (`channel:class.method(name)`, `channel:H(class,body-size)`, `channel:B(len)`, `channel:HB`):\n")
            print("```")
            for i in range(0, len(s["seq"]), 4):
                print("  ".join(s["seq"][i:i + 4]))
            print("```\n")
        else:
            print(f"{s['file']}: {s['bytes']} bytes, {s['frames']} frames ({s['counts']})")
            print("  methods: " + " ".join(s["methods"]))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
