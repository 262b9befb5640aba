#!/usr/bin/python3
"""Stream consumer for the link test: records what nodes deliver, by seq.

  seq_consumer.py listen --port P --ca FILE --user U --password-file F --topic FILTER --out FILE --ready FILE
      Subscribes at QoS 1 and appends one line per record to FILE:
        NODE SEQ BODY        (the body's newlines escaped as \\n)
      from each record batch (content type application/vnd.cairn.records.v1,
      edge/include/cairn/edge/record_batch.h; user property cairn-node).
      Touches READY once the subscription is acknowledged. Runs until killed.
  seq_consumer.py report FILE NODE
      Prints a JSON summary of NODE's records: how many arrived, distinct
      seqs, the seqs missing between 1 and the highest seen (as ranges),
      QoS 1 duplicates (the same seq again), distinct bodies and bodies that
      came with several seqs (read twice by the node, not a QoS 1 duplicate).
"""
import argparse
import json
import os
import ssl
import sys
import threading

BATCH_TYPE = "application/vnd.cairn.records.v1"


def decode_batch(payload):
    """The (seq, body) entries of a batch payload; raises ValueError if malformed."""
    out = []
    pos = 0
    while pos < len(payload):
        sp = payload.index(b" ", pos)
        lf = payload.index(b"\n", sp)
        seq = int(payload[pos:sp])
        n = int(payload[sp + 1:lf])
        body = payload[lf + 1:lf + 1 + n]
        if len(body) != n or payload[lf + 1 + n:lf + 2 + n] != b"\n":
            raise ValueError("truncated record")
        out.append((seq, body))
        pos = lf + 2 + n
    return out


def listen(args):
    import paho.mqtt.client as mqtt

    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)
    password = open(args.password_file).read().strip()
    client = mqtt.Client(client_id="link-consumer-%d" % os.getpid(), protocol=mqtt.MQTTv5)
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = False
    client.tls_set_context(ctx)
    client.username_pw_set(args.user, password)

    def on_connect(c, _u, _flags, rc, _props):
        if rc != 0:
            print("consumer: connect refused: %s" % rc, file=sys.stderr)
            return
        c.subscribe(args.topic, qos=1)

    def on_subscribe(_c, _u, _mid, _rcs, _props):
        open(args.ready, "w").close()

    def on_message(_c, _u, m):
        props = m.properties
        ctype = getattr(props, "ContentType", "") if props else ""
        user = dict(getattr(props, "UserProperty", []) or []) if props else {}
        node = user.get("cairn-node", "?")
        if ctype != BATCH_TYPE:
            print("consumer: %s: content type %r" % (m.topic, ctype), file=sys.stderr)
            return
        try:
            entries = decode_batch(bytes(m.payload))
        except ValueError as e:
            print("consumer: %s: bad batch: %s" % (m.topic, e), file=sys.stderr)
            return
        if entries and str(entries[0][0]) != user.get("cairn-seq"):
            print("consumer: cairn-seq %s but first record %d" % (user.get("cairn-seq"), entries[0][0]),
                  file=sys.stderr)
        with lock:
            for seq, body in entries:
                text = body.decode("utf-8", "replace").replace("\\", "\\\\").replace("\n", "\\n")
                out.write("%s %d %s\n" % (node, seq, text))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(args.host, args.port, keepalive=30)
    client.loop_forever(retry_first_connection=True)


def report(path, node):
    seen = {}  # seq -> count
    bodies = {}  # body -> set of seqs
    records = 0
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 2)
            if len(parts) < 2 or parts[0] != node:
                continue
            seq = int(parts[1])
            body = parts[2] if len(parts) > 2 else ""
            records += 1
            seen[seq] = seen.get(seq, 0) + 1
            bodies.setdefault(body, set()).add(seq)
    top = max(seen) if seen else 0
    gaps = []
    start = None
    for s in range(1, top + 2):
        if s <= top and s not in seen:
            if start is None:
                start = s
        elif start is not None:
            gaps.append([start, s - 1])
            start = None
    return {
        "records": records,
        "distinct_seqs": len(seen),
        "min": min(seen) if seen else 0,
        "max": top,
        "missing": sum(b - a + 1 for a, b in gaps),
        "gaps": gaps,
        "qos1_duplicates": records - len(seen),
        "distinct_bodies": len(bodies),
        "bodies_with_several_seqs": sum(1 for s in bodies.values() if len(s) > 1),
    }


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("listen")
    l.add_argument("--host", default="localhost")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--ca", required=True)
    l.add_argument("--user", required=True)
    l.add_argument("--password-file", required=True)
    l.add_argument("--topic", required=True)
    l.add_argument("--out", required=True)
    l.add_argument("--ready", required=True)
    r = sub.add_parser("report")
    r.add_argument("file")
    r.add_argument("node")
    a = p.parse_args()
    if a.cmd == "listen":
        listen(a)
    else:
        print(json.dumps(report(a.file, a.node)))


if __name__ == "__main__":
    main()
