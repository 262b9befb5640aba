#!/usr/bin/env python3
"""Print the health reports of a workspace's nodes, decoded (docs/integrators.md).

Subscribes with an integrator credential (cred:{ws}:{name}) to
cairn/v1/ws/{ws}/nodes/+/health over TLS, MQTT v5, and decodes each payload as
cairn.v1.NodeHealth (its MQTT v5 content type). The Python modules are
generated from schemas/ with protoc into a temporary directory at start, so
nothing generated is kept.

Needs Debian's python3-paho-mqtt (1.6) and python3-protobuf, and protoc
(protobuf-compiler). Run from anywhere; --schemas defaults to the schemas/
directory of the checkout holding this file.

    /usr/bin/python3 docs/examples/health_subscriber.py --host localhost --port 8883 \
        --cafile ca.crt --username cred:demo:health-reader --password-file cred.pw \
        --workspace demo --count 3

Prints one line per report:
    health demo/edge-1 seq=42 agent_version=0.1.0 cpu=3.1% mem=812/3936 MiB pipelines=app-errors:RUNNING
Exits 0 after --count reports, 1 if they did not all arrive within --timeout.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HEALTH_TYPE = "cairn.v1.NodeHealth"


def load_node_pb2(schemas: pathlib.Path, out_dir: str):
    """Generates cairn/v1/node_pb2.py from the schemas into out_dir and imports it."""
    subprocess.run(["protoc", f"--python_out={out_dir}", f"-I{schemas}",
                    str(schemas / "cairn" / "v1" / "node.proto")], check=True)
    sys.path.insert(0, out_dir)
    from cairn.v1 import node_pb2  # generated just now (a namespace package)
    return node_pb2


def describe(node_pb2, ws: str, node: str, h) -> str:
    mib = 1024 * 1024
    pipelines = ",".join(f"{p.name}:{node_pb2.PipelineHealth.State.Name(p.state)}"
                         for p in h.pipelines) or "-"
    return (f"health {ws}/{node} seq={h.seq} agent_version={h.agent_version} "
            f"cpu={h.cpu_percent:.1f}% mem={h.memory_used_bytes // mib}/{h.memory_total_bytes // mib} MiB "
            f"pipelines={pipelines}")


def main() -> int:
    here = pathlib.Path(__file__).resolve()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=8883)
    ap.add_argument("--cafile", required=True, help="the control plane's CA certificate")
    ap.add_argument("--username", required=True, help="cred:{ws}:{name}")
    ap.add_argument("--password-file", required=True, help="file holding the credential's password")
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--node", default="+", help="one node (default: all of the workspace)")
    ap.add_argument("--count", type=int, default=0, help="stop after N reports (0: run until interrupted)")
    ap.add_argument("--timeout", type=float, default=0, help="give up after S seconds (0: never)")
    ap.add_argument("--schemas", default=str(here.parents[2] / "schemas"))
    args = ap.parse_args()

    password = pathlib.Path(args.password_file).read_text().strip()
    topic = f"cairn/v1/ws/{args.workspace}/nodes/{args.node}/health"
    done = threading.Event()
    state = {"seen": 0, "error": None}

    with tempfile.TemporaryDirectory(prefix="cairn-pb2-") as gen:
        node_pb2 = load_node_pb2(pathlib.Path(args.schemas), gen)

        def on_connect(client, userdata, flags, rc, properties=None):
            if rc != 0:
                state["error"] = f"connect refused: {rc}"
                done.set()
                return
            client.subscribe(topic, qos=1)

        def on_subscribe(client, userdata, mid, reason_codes, properties=None):
            if all(rc.value >= 0x80 for rc in reason_codes):
                state["error"] = f"subscription to {topic} refused: {reason_codes[0]}"
                done.set()

        def on_message(client, userdata, msg):
            ctype = getattr(msg.properties, "ContentType", None) if msg.properties else None
            if ctype not in (None, HEALTH_TYPE):  # MQTT 3.1.1 brokers drop the content type
                print(f"skipped {msg.topic}: content type {ctype}", file=sys.stderr)
                return
            _, _, _, ws, _, node, _ = msg.topic.split("/")
            h = node_pb2.NodeHealth()
            h.ParseFromString(msg.payload)
            print(describe(node_pb2, ws, node, h), flush=True)
            state["seen"] += 1
            if args.count and state["seen"] >= args.count:
                done.set()

        client = mqtt.Client(client_id="", protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=args.cafile)
        client.username_pw_set(args.username, password)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
        try:
            client.connect(args.host, args.port, keepalive=30, clean_start=True, properties=props)
        except OSError as e:
            print(f"error: cannot connect to {args.host}:{args.port}: {e}", file=sys.stderr)
            return 1
        client.loop_start()
        try:
            finished = done.wait(args.timeout if args.timeout > 0 else None)
        except KeyboardInterrupt:
            finished = True
        client.disconnect()
        client.loop_stop()

    if state["error"]:
        print(f"error: {state['error']}", file=sys.stderr)
        return 1
    if not finished:
        print(f"error: {state['seen']} of {args.count} reports within {args.timeout:g} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
