#!/usr/bin/python3
"""Isolation matrix: tries every cell of the permission table in
docs/security.md against the real broker and prints one ok/FAIL line per cell.

  access_matrix.py TABLE.md CONFIG.json

CONFIG names the broker, an observer (a service principal, which may publish
and read anything) and one connection recipe per client kind of the table.
Each cell is asserted by trying it, and every negative is proven with a marker:
  receive  the client subscribes to the topic and to a marker topic it can
           read; the observer publishes a fresh payload to the topic, then to
           the marker. allow: the payload arrives. deny: the marker arrives
           and the payload did not arrive before it.
  publish  the observer subscribes to the topic; the client publishes a fresh
           payload (QoS 1) and waits for the broker's PUBACK; then the
           observer publishes a marker to itself. allow: the client's payload
           arrives before the marker. deny: only the marker arrives.
A client kind whose connection the broker refuses (revoked node, removed
user) must be refused with "Not authorized"; all its cells are then denials
by construction, and the refusal itself is one checked line.
Exit status: 0 if every cell matched the table.
"""
import json
import queue
import re
import ssl
import sys
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TIMEOUT = 5.0
ROOT = "cairn/v1"


class Conn:
    """One MQTT v5 connection with a queue of received messages."""

    def __init__(self, name, recipe, broker):
        self.name = name
        self.recipe = recipe
        self.client_id = recipe.get("client_id") or f"matrix-{uuid.uuid4().hex[:10]}"
        self.username = recipe.get("username", "")
        self.inbox = queue.Queue()
        self.connack = queue.Queue()
        self.acks = {}
        self.ack_cv = threading.Condition()
        self.subacks = {}
        c = mqtt.Client(client_id=self.client_id, protocol=mqtt.MQTTv5)
        ctx = ssl.create_default_context(cafile=broker["ca"])
        ctx.check_hostname = False
        if recipe.get("cert"):
            ctx.load_cert_chain(recipe["cert"], recipe["key"])
        c.tls_set_context(ctx)
        if self.username or recipe.get("password") is not None:
            c.username_pw_set(self.username or None, recipe.get("password"))
        c.on_connect = self._on_connect
        c.on_message = lambda _c, _u, m: self.inbox.put((m.topic, bytes(m.payload)))
        c.on_publish = self._on_ack
        c.on_subscribe = self._on_suback
        self.client = c
        self.port = broker["node_port"] if recipe.get("cert") else broker["auth_port"]
        self.host = broker["host"]

    def _on_connect(self, _c, _u, _flags, rc, _props):
        self.connack.put(rc)

    def _on_ack(self, _c, _u, mid):
        with self.ack_cv:
            self.acks[mid] = True
            self.ack_cv.notify_all()

    def _on_suback(self, _c, _u, mid, rcs, _props):
        with self.ack_cv:
            self.subacks[mid] = rcs
            self.ack_cv.notify_all()

    def connect(self):
        """Returns None when connected, else the refusal as text."""
        try:
            self.client.connect(self.host, self.port, keepalive=30, clean_start=True)
        except Exception as e:  # TLS or socket refusal
            return f"connect failed: {e}"
        self.client.loop_start()
        try:
            rc = self.connack.get(timeout=TIMEOUT)
        except queue.Empty:
            self.client.loop_stop()
            return "no CONNACK (connection closed)"
        if rc == 0:
            return None
        self.client.loop_stop()
        return f"refused: {rc}"

    def wait(self, table, mid):
        deadline = time.monotonic() + TIMEOUT
        with self.ack_cv:
            while mid not in table:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.ack_cv.wait(left)
            return table.pop(mid)

    def subscribe(self, topic):
        rc, mid = self.client.subscribe(topic, qos=1)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        return self.wait(self.subacks, mid) is not None

    def unsubscribe(self, topic):
        self.client.unsubscribe(topic)

    def publish(self, topic, payload, retain=False):
        props = Properties(PacketTypes.PUBLISH)
        if topic.startswith(ROOT + "/rpc/"):
            props.ResponseTopic = f"{ROOT}/reply/{self.username}/{self.client_id}/matrix"
            props.CorrelationData = b"matrix"
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        return self.wait(self.acks, info.mid) is not None

    def drain(self):
        while not self.inbox.empty():
            self.inbox.get_nowait()

    def saw_before_marker(self, payload, marker):
        """True if `payload` arrived before `marker`; None if no marker came."""
        seen = False
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                _topic, body = self.inbox.get(timeout=left)
            except queue.Empty:
                return None
            if body == payload:
                seen = True
            elif body == marker:
                return seen

    def close(self):
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def parse_table(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"<!-- permission-matrix:begin.*?-->(.*?)<!-- permission-matrix:end -->", text, re.S)
    if not m:
        sys.exit(f"{path}: no permission-matrix block")
    rows = []
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or cells[0] in ("client", "") or set(cells[0]) <= set("-"):
            continue
        topic_cell = cells[1]
        retained = topic_cell.endswith("retained")
        topic = re.search(r"`([^`]+)`", topic_cell).group(1)
        rows.append({"client": cells[0], "topic": topic, "retained": retained,
                     "own": (cells[2], cells[3]), "other": (cells[4], cells[5])})
    return rows


def expand(pattern, ws, recipe):
    """The concrete topic of a table pattern for one workspace."""
    me = recipe.get("username", "")
    if pattern.startswith("reply/{me}"):
        return f"{ROOT}/reply/{me}/{recipe['client_id_used']}/probe"
    if pattern.startswith("reply/{other}"):
        return f"{ROOT}/reply/user:someone-else/ctl-x/probe"
    if pattern.startswith(("rpc/", "sys/")):
        return f"{ROOT}/{pattern}"
    t = pattern.replace("{self}", recipe.get("self", "n1")).replace("{peer}", recipe.get("peer", "n2"))
    return f"{ROOT}/ws/{ws}/{t}"


def marker_topic(kind, recipe, conn, ws):
    m = recipe.get("marker", "reply")
    if m == "desired":
        return f"{ROOT}/ws/{ws}/nodes/{recipe['self']}/desired"
    if m == "events":
        return f"{ROOT}/ws/{ws}/events"
    return f"{ROOT}/reply/{conn.username}/{conn.client_id}/marker"


def main():
    table, config = sys.argv[1], json.load(open(sys.argv[2]))
    broker = config["broker"]
    rows = parse_table(table)
    observer = Conn("observer", config["observer"], broker)
    if observer.connect():
        sys.exit("the observer (a service principal) cannot connect")
    obs_marker = f"{ROOT}/reply/{observer.username}/{observer.client_id}/marker"
    observer.subscribe(obs_marker)
    passed = failed = 0

    def report(ok, what, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"  ok    {what}")
        else:
            failed += 1
            print(f"  FAIL  {what}" + (f"\n        {detail}" if detail else ""))

    kinds = []
    for r in rows:
        if r["client"] not in kinds:
            kinds.append(r["client"])
    for kind in kinds:
        recipe = config["clients"].get(kind)
        if recipe is None:
            report(False, f"{kind}: no connection recipe in the test config")
            continue
        conn = Conn(kind, recipe, broker)
        recipe["client_id_used"] = conn.client_id
        refusal = conn.connect()
        if recipe.get("refused"):
            report(refusal is not None and "Not authorized" in refusal,
                   f"{kind}: the broker refuses the connection (not authorised)", refusal or "connected")
            for r in (r for r in rows if r["client"] == kind):
                for col in ("own", "other"):
                    for verdict in r[col]:
                        if verdict not in ("deny", "-"):
                            report(False, f"{kind} {r['topic']} {col}: a refused client cannot be allowed")
            if refusal is None:
                conn.close()
            continue
        if refusal is not None:
            report(False, f"{kind}: connects", refusal)
            continue
        for r in (r for r in rows if r["client"] == kind):
            for col, ws in (("own", recipe["ws"]), ("other", config["other_ws"][kind] if kind in config.get("other_ws", {}) else config["ws"]["other"])):
                pub, recv = r[col]
                topic = expand(r["topic"], ws, recipe)
                label = f"{kind:13} {col:5} {'retained ' if r['retained'] else ''}{topic}"
                if pub != "-":
                    payload = f"probe-{uuid.uuid4().hex}".encode()
                    marker = f"marker-{uuid.uuid4().hex}".encode()
                    observer.subscribe(topic)
                    observer.drain()
                    acked = conn.publish(topic, payload, retain=r["retained"])
                    observer.publish(obs_marker, marker)
                    seen = observer.saw_before_marker(payload, marker)
                    observer.unsubscribe(topic)
                    if r["retained"] and seen:
                        observer.publish(topic, b"", retain=True)  # clear what the probe left
                    if not acked and pub == "allow":
                        report(False, f"publish {label}: allow", "no PUBACK")
                    elif seen is None:
                        report(False, f"publish {label}: {pub}", "the observer's marker never arrived")
                    else:
                        report(seen == (pub == "allow"), f"publish {label}: {pub}",
                               "delivered" if seen else "not delivered")
                if recv != "-":
                    payload = f"probe-{uuid.uuid4().hex}".encode()
                    marker = f"marker-{uuid.uuid4().hex}".encode()
                    mtopic = marker_topic(kind, recipe, conn, recipe["ws"])
                    conn.subscribe(mtopic)
                    conn.subscribe(topic)
                    conn.drain()
                    observer.publish(topic, payload)
                    observer.publish(mtopic, marker)
                    seen = conn.saw_before_marker(payload, marker)
                    conn.unsubscribe(topic)
                    if seen is None:
                        report(False, f"receive {label}: {recv}", f"the marker on {mtopic} never arrived")
                    else:
                        report(seen == (recv == "allow"), f"receive {label}: {recv}",
                               "delivered" if seen else "not delivered")
        conn.close()
    observer.close()
    print(f"\nmatrix: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
