#!/usr/bin/env bash
# End-to-end: the integrator surface of docs/integrators.md (issue 7, section 4).
#   * the doc's commands marked "tested" (credential, mosquitto_sub | protoc
#     --decode, the Python example) are taken from the doc and run as written
#     against a real broker, registry and node;
#   * an integrator credential reads nothing of another workspace: not by a
#     wildcard over workspaces (a marker shows the subscription was live), not
#     by naming the other workspace (the SUBACK refuses it).
set -uo pipefail

source "$(dirname "$0")/../lib/e2e.sh" integrator
A=alpha
B=beta
DOC="$SRC_DIR/docs/integrators.md"

bootstrap() { # WS NAME
  cairn-edge bootstrap --token "$(cairnctl -w "$1" token create)" --name "$2" \
    --data-dir "$STACK_DIR/nodes/$1-$2" >/dev/null
}
# doc_block NAME: the ```sh block that follows <!-- integrator-test:NAME --> in the doc.
doc_block() {
  awk -v m="<!-- integrator-test:$1 -->" '
    $0 == m { found = 1; next }
    found && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }' "$DOC"
}
# run_block NAME: runs it in the integrator's working directory (a stand-in
# for a source checkout: schemas/ and docs/ are links to this tree).
WORK="$STACK_DIR/work"
mkdir -p "$WORK"
ln -s "$SRC_DIR/schemas" "$WORK/schemas"
ln -s "$SRC_DIR/docs" "$WORK/docs"
run_block() {
  local code; code=$(doc_block "$1")
  [[ -n "$code" ]] || { echo "no block integrator-test:$1 in $DOC"; return 1; }
  (cd "$WORK" && bash -eo pipefail -c "$code")
}
health_seq() { cairnctl -w "$1" -o json node get "$2" | jq -r '.health.seq // 0'; }
seq_above() { (( $(health_seq "$1" "$2") > $3 )); }

t_section "set-up: two workspaces, a node in each reporting every second"
check "workspace $A" cairnctl workspace create $A
check "workspace $B" cairnctl workspace create $B
check "node n1 in $A" bootstrap $A n1
check "node n1 in $B (same name, other workspace)" bootstrap $B n1
stack_start_edge "$A-n1" --health-interval 1s
stack_start_edge "$B-n1" --health-interval 1s
eventually "$A/n1 reports health" 20 seq_above $A n1 0
eventually "$B/n1 reports health" 20 seq_above $B n1 0

# The doc's variables, for this stack.
export WS=$A NODE=n1 HOST=localhost PORT=$AUTH_PORT CA=$CAIRN_CA_FILE

t_section "the documented commands, run as written"
check "the credential block makes a credential" run_block credential
check "its password file is 0600 and holds one password" \
  bash -c "[[ \$(stat -c %a '$WORK/cred.pw') == 600 && \$(wc -l <'$WORK/cred.pw') == 1 ]]"
check "cairnctl credential list shows it" bash -c "cairnctl -w $A credential list | grep -q health-reader"

OUT=$(run_block decode-health 2>&1)
RC=$?
VERSION=$(cairnctl -w $A -o json node get n1 | jq -r '.health.agent_version // .agent_version // empty')
check "mosquitto_sub | protoc --decode cairn.v1.NodeHealth succeeds" test "$RC" = 0
check "and decodes the node's agent_version ($VERSION)" grep -qxF "agent_version: \"$VERSION\"" <<<"$OUT"
check "and a report number (seq) and the 1 s interval" \
  bash -c 'grep -Eq "^seq: [1-9][0-9]*$" <<<"$1" && grep -qx "interval_seconds: 1" <<<"$1"' _ "$OUT"
[[ $RC == 0 ]] || echo "$OUT" | head -20

OUT=$(run_block decode-status 2>&1)
check "the status block decodes the retained NodeStatus: ONLINE" grep -qx "state: ONLINE" <<<"$OUT"
check "with the same agent_version" grep -qxF "agent_version: \"$VERSION\"" <<<"$OUT"

OUT=$(run_block python 2>&1)
RC=$?
check "the Python example exits 0 after --count 3" test "$RC" = 0
check "and printed three decoded reports of $A/n1" \
  test "$(grep -cE "^health $A/n1 seq=[1-9][0-9]* agent_version=$VERSION cpu=[0-9.]+% mem=[0-9]+/[0-9]+ MiB pipelines=" <<<"$OUT")" = 3
[[ $RC == 0 ]] || echo "$OUT" | head -20

# The events loop runs until interrupted: run it for at most 30 s and label
# the node until an event shows up decoded (the first labels may come before
# the subscription is live).
EVENTS="$STACK_DIR/events.out"
doc_block decode-events >"$STACK_DIR/events.sh"
(cd "$WORK" && exec timeout 30 bash -eo pipefail "$STACK_DIR/events.sh") >"$EVENTS" 2>&1 &
EVENTS_PID=$!
LABEL=0
labelled_event_decoded() {
  LABEL=$((LABEL + 1))
  cairnctl -w $A node label n1 "probe=p$LABEL" >/dev/null || return 1
  wait_until 1 grep -qx "  value: \"p$LABEL\"" "$EVENTS"
}
eventually "the events loop decodes a NODE_LABELS_CHANGED with the new label" 20 labelled_event_decoded
check "as type NODE_LABELS_CHANGED of node n1" bash -c "grep -qx 'type: NODE_LABELS_CHANGED' '$EVENTS' && grep -qx 'node: \"n1\"' '$EVENTS'"
kill "$EVENTS_PID" 2>/dev/null  # timeout passes it on to the loop

PW=$(cat "$WORK/cred.pw")
SUB=(mosquitto_sub -V mqttv5 -h localhost -p "$AUTH_PORT" --cafile "$CAIRN_CA_FILE" -u "cred:$A:health-reader" -P "$PW")
t_section "payloads name their type (MQTT v5 content type), as the doc's table says"
OUT=$("${SUB[@]}" -t "cairn/v1/ws/$A/nodes/n1/health" -C 1 -W 15 -F '%C %r %P' 2>&1)
check "health: cairn.v1.NodeHealth, not retained, with cairn-node and cairn-seq" \
  bash -c '[[ "$1" =~ ^cairn\.v1\.NodeHealth\ 0\  && "$1" == *" cairn-node:n1"* && "$1" =~ \ cairn-seq:[0-9]+ ]] || { echo "got: $1"; exit 1; }' _ "$OUT"
OUT=$("${SUB[@]}" -t "cairn/v1/ws/$A/nodes/n1/status" -C 1 -W 5 -F '%C %r' 2>&1)
check "status: cairn.v1.NodeStatus, retained (arrives at once)" test "$OUT" = "cairn.v1.NodeStatus 1"

t_section "data streams: a batch of records, split by the doc's Python function"
# doc_py NAME: the ```python block after the marker.
doc_py() { awk -v m="<!-- integrator-test:$1 -->" '$0 == m { f = 1; next } f && /^```python$/ { i = 1; next } i && /^```$/ { exit } i { print }' "$DOC"; }
printf 'name: beat\nworkspace: %s\npipeline:\n  input: {generate: {interval: 100ms, message: hello}}\n  output: {mqtt: {stream: beats}}\n' $A >"$STACK_DIR/beat.yaml"
check "a pipeline sends hello to stream beats" cairnctl -w $A pipeline apply -f "$STACK_DIR/beat.yaml"
BATCH="$STACK_DIR/batch.bin"
check "one message of data/beats arrives (mosquitto_sub -N: the raw batch)" \
  bash -c '"$@" >"'"$BATCH"'"' _ "${SUB[@]}" -t "cairn/v1/ws/$A/data/+" -C 1 -N -W 30
doc_py records >"$STACK_DIR/records.py"
OUT=$(/usr/bin/python3 -c '
import sys
exec(open(sys.argv[1]).read())
for seq, rec in records(open(sys.argv[2], "rb").read()):
    print(seq, rec.decode())' "$STACK_DIR/records.py" "$BATCH" 2>&1)
check "records() splits it into (seq, record) pairs: hello with a seq each" \
  bash -c '[[ -n "$1" ]] && ! grep -qvE "^[0-9]+ hello$" <<<"$1" || { echo "got: $1"; exit 1; }' _ "$OUT"
check "whose seqs increase" bash -c 'cut -d" " -f1 <<<"$1" | sort -nc' _ "$OUT"

t_section "the credential reads nothing of another workspace"
WILD="$STACK_DIR/wildcard.out"
"${SUB[@]}" -t 'cairn/v1/ws/+/nodes/+/health' -F '%t' >"$WILD" 2>&1 &
WILD_PID=$!
own_lines() { grep -c "^cairn/v1/ws/$A/nodes/n1/health$" "$WILD"; }
eventually "subscribed to cairn/v1/ws/+/nodes/+/health, it receives $A's health" 15 bash -c "grep -q '^cairn/v1/ws/$A/' '$WILD'"
# While it is subscribed, $B's node reports at least twice (the registry,
# subscribed to every workspace's health, stores them) ...
B0=$(health_seq $B n1)
eventually "meanwhile $B/n1 publishes health (the registry sees seq > $((B0 + 2)))" 15 seq_above $B n1 $((B0 + 2))
# ... then a later report of its own workspace arrives (the marker: the
# subscription is still live and delivering) ...
OWN=$(own_lines)
eventually "a later report of $A/n1 still arrives (the marker)" 15 bash -c "(( \$(grep -c '^cairn/v1/ws/$A/nodes/n1/health\$' '$WILD') > $OWN ))"
kill "$WILD_PID" 2>/dev/null
wait "$WILD_PID" 2>/dev/null
# ... and not one of $B's did.
check "but not one message of $B ($(own_lines) of $A's)" test "$(grep -c "/ws/$B/" "$WILD")" = 0
check "and nothing else either (only its own node's health topic)" test "$(grep -vc "^cairn/v1/ws/$A/nodes/n1/health$" "$WILD")" = 0

# (mosquitto_sub reports a refused SUBACK on stderr and exits 0)
check "naming $B's health topic is refused in the SUBACK" \
  bash -c '"$@" 2>&1 | grep -qx "All subscription requests were denied."' _ \
  "${SUB[@]}" -t "cairn/v1/ws/$B/nodes/n1/health" -C 1 -W 5
check_fails "the Python example, pointed at $B, says its subscription was refused" "subscription to cairn/v1/ws/$B/nodes/\+/health refused" \
  bash -c "cd '$WORK' && /usr/bin/python3 docs/examples/health_subscriber.py --host localhost --port $AUTH_PORT --cafile '$CAIRN_CA_FILE' \
    --username cred:$A:health-reader --password-file cred.pw --workspace $B --count 1 --timeout 10"

t_finish
