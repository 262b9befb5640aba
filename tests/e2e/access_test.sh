#!/usr/bin/env bash
# End-to-end: the access boundary (issue 5) on a real PostgreSQL and Mosquitto.
#   * the isolation matrix of docs/security.md, every cell tried against the
#     broker (tests/e2e/access_matrix.py), for each client kind;
#   * RPC forgery: viewers, integrators and nodes calling operator RPCs are
#     refused (naming the role needed) and audited;
#   * removing a user, a role binding or an integrator credential, and
#     revoking a node, take effect on live sessions within a second.
set -uo pipefail

source "$(dirname "$0")/../lib/e2e.sh" access
A=alpha
B=beta
PY=/usr/bin/python3
ADMIN_PW=$(cat "$CAIRN_PASSWORD_FILE")

bootstrap() { # WS NAME
  cairn-edge bootstrap --token "$(cairnctl -w "$1" token create)" --name "$2" \
    --data-dir "$STACK_DIR/nodes/$1-$2" >/dev/null
}
new_user() { # NAME -> password file
  cairnctl user create "$1" >"$STACK_DIR/secrets/user-$1" && chmod 600 "$STACK_DIR/secrets/user-$1"
}
as_user() { # NAME cairnctl-args...
  local u=$1; shift
  CAIRN_USER=$u CAIRN_PASSWORD_FILE="$STACK_DIR/secrets/user-$u" cairnctl "$@"
}
# sub_one USER PASSWORD TOPIC: waits up to 10 s for one message.
sub_live() { # USERNAME PASSWORD TOPIC OUTFILE: a live subscriber in the background
  mosquitto_sub -V mqttv5 -h localhost -p "$AUTH_PORT" --cafile "$CAIRN_CA_FILE" -u "$1" -P "$2" \
    -t "$3" -v >"$4" 2>&1 &
  echo $!
}
svc_pub() { # TOPIC MESSAGE
  mosquitto_pub -V mqttv5 -h localhost -p "$AUTH_PORT" --cafile "$CAIRN_CA_FILE" \
    -u svc:scheduler -P "$(cat "$STACK_DIR/secrets/svc-scheduler")" -t "$1" -m "$2" -q 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }

t_section "set-up: two workspaces, nodes, users, an integrator credential"
check "the first admin's password file is 0600" test "$(stat -c %a "$CAIRN_PASSWORD_FILE")" = 600
check "the registry logs where the first admin's password is" grep -q "first user \"admin\" (cluster-wide admin); its password is in $CAIRN_PASSWORD_FILE" "$STACK_DIR/logs/registry.log"
check "and never the password itself" test "$(cat "$STACK_DIR"/logs/* | grep -cF -- "$ADMIN_PW")" = 0
check "workspace $A" cairnctl workspace create $A
check "workspace $B" cairnctl workspace create $B
check "node n1 in $A" bootstrap $A n1
check "node n2 in $A" bootstrap $A n2
check "node n1 in $B (same name, other workspace)" bootstrap $B n1
check "node n3 in $A (to be revoked)" bootstrap $A n3
check "cairnctl node revoke n3" cairnctl -w $A node revoke n3
for u in wsadmin ops view gone; do check "user create $u" new_user $u; done
check "user create prints the password alone" grep -Eq '^[A-Za-z0-9_-]{16,}$' "$STACK_DIR/secrets/user-ops"
check "role grant admin" cairnctl role grant wsadmin admin -w $A
check "role grant operator" cairnctl role grant ops operator -w $A
check "role grant viewer" cairnctl role grant view viewer -w $A
check "role grant viewer (user to be removed)" cairnctl role grant gone viewer -w $A
check "user delete" cairnctl user delete gone
CRED_JSON=$(cairnctl -w $A -o json credential create telegraf)
check "credential create -o json gives the MQTT username" \
  jq -e --arg u "cred:$A:telegraf" '.username == $u and (.password | length) >= 16' <<<"$CRED_JSON"
CRED_USER=$(jq -r .username <<<"$CRED_JSON")
CRED_PW=$(jq -r .password <<<"$CRED_JSON")
whoami_is() { as_user "$1" -o json whoami | jq -e --arg p "user:$1" --arg ws "$A" '.principal == $p and (.bindings | map(select(.workspace == $ws and .role == "operator")) | length == 1)'; }
check "whoami names the principal and its roles" whoami_is ops

# v311_reads: an integrator subscribed with MQTT 3.1.1 receives its
# workspace's events (publishes until the subscription is live).
v311_reads() {
  local out="$STACK_DIR/v311.out" i p
  mosquitto_sub -V mqttv311 -h localhost -p "$AUTH_PORT" --cafile "$CAIRN_CA_FILE" -u "$CRED_USER" -P "$CRED_PW" \
    -t "cairn/v1/ws/$A/events" -C 1 -W 10 >"$out" 2>&1 &
  p=$!
  for i in $(seq 1 50); do
    svc_pub "cairn/v1/ws/$A/events" v311-hello >/dev/null 2>&1
    wait_until 1 grep -q v311-hello "$out" && break
  done
  wait "$p"
  grep -q v311-hello "$out"
}
check "an integrator reads with MQTT 3.1.1 too (mosquitto_sub -V mqttv311)" v311_reads

# cairnctl login: a user's own config, 0600, used when no CAIRN_* variable is set.
LOGIN_HOME=$(mktemp -d)
login_then_whoami() {
  env -u CAIRN_USER -u CAIRN_PASSWORD_FILE -u CAIRN_BROKER_URL -u CAIRN_CA_FILE HOME="$LOGIN_HOME" XDG_CONFIG_HOME= \
    cairnctl login --broker-url "$CAIRN_BROKER_URL" --ca-file "$CAIRN_CA_FILE" --user view \
    --password-file "$STACK_DIR/secrets/user-view" >/dev/null || return 1
  env -u CAIRN_USER -u CAIRN_PASSWORD_FILE -u CAIRN_BROKER_URL -u CAIRN_CA_FILE HOME="$LOGIN_HOME" XDG_CONFIG_HOME= \
    cairnctl -o json whoami | jq -e '.principal == "user:view"'
}
check "cairnctl login stores the credential, and later commands use it" login_then_whoami
check "the stored config is 0600" test "$(stat -c %a "$LOGIN_HOME/.config/cairn/config")" = 600
check_fails "a wrong password is not stored" "refused|not authori" \
  env -u CAIRN_USER -u CAIRN_PASSWORD_FILE HOME="$LOGIN_HOME" XDG_CONFIG_HOME= cairnctl login --broker-url "$CAIRN_BROKER_URL" \
    --ca-file "$CAIRN_CA_FILE" --user ops --password-file "$STACK_DIR/secrets/user-view"
rm -rf "$LOGIN_HOME"

t_section "isolation matrix (docs/security.md)"
node_recipe() { # WS NAME SELF PEER
  local d="$STACK_DIR/nodes/$1-$2"
  jq -n --arg u "node:$1:$2" --arg c "$d/node.crt" --arg k "$d/node.key" --arg ws "$1" --arg self "$3" --arg peer "$4" \
    '{username: $u, client_id: $u, cert: $c, key: $k, ws: $ws, self: $self, peer: $peer, marker: "desired"}'
}
user_recipe() { # NAME PASSWORD
  jq -n --arg u "user:$1" --arg p "$2" --arg ws "$A" '{username: $u, password: $p, ws: $ws, self: "n1", peer: "n2"}'
}
jq -n \
  --arg ca "$CAIRN_CA_FILE" --argjson auth "$AUTH_PORT" --argjson node "$NODE_PORT" \
  --arg svcpw "$(cat "$STACK_DIR/secrets/svc-registry")" --arg schedpw "$(cat "$STACK_DIR/secrets/svc-scheduler")" \
  --argjson n1 "$(node_recipe $A n1 n1 n2)" --argjson n3 "$(node_recipe $A n3 n3 n1)" \
  --argjson cadmin "$(user_recipe admin "$ADMIN_PW")" \
  --argjson wsadmin "$(user_recipe wsadmin "$(cat "$STACK_DIR/secrets/user-wsadmin")")" \
  --argjson ops "$(user_recipe ops "$(cat "$STACK_DIR/secrets/user-ops")")" \
  --argjson view "$(user_recipe view "$(cat "$STACK_DIR/secrets/user-view")")" \
  --argjson gone "$(user_recipe gone "$(cat "$STACK_DIR/secrets/user-gone")")" \
  --arg credu "$CRED_USER" --arg credp "$CRED_PW" --arg A "$A" --arg B "$B" '
  {broker: {host: "localhost", auth_port: $auth, node_port: $node, ca: $ca},
   observer: {username: "svc:registry", password: $svcpw},
   ws: {own: $A, other: $B},
   clients: {
     node: $n1,
     service: {username: "svc:scheduler", password: $schedpw, ws: $A, self: "n1", peer: "n2"},
     "cluster-admin": $cadmin, admin: $wsadmin, operator: $ops, viewer: $view,
     integrator: {username: $credu, password: $credp, ws: $A, self: "n1", peer: "n2", marker: "events"},
     bootstrap: {username: "bootstrap", password: "anything", ws: $A, self: "n1", peer: "n2"},
     "revoked-node": ($n3 + {refused: true}),
     "removed-user": ($gone + {refused: true})
   }}' >"$STACK_DIR/matrix.json"
if "$PY" "$SRC_DIR/tests/e2e/access_matrix.py" "$SRC_DIR/docs/security.md" "$STACK_DIR/matrix.json" \
    >"$STACK_DIR/matrix.out" 2>&1; then
  t_pass "every cell of the permission table holds ($(tail -1 "$STACK_DIR/matrix.out"))"
else
  t_fail "the permission table" "$(grep -E 'FAIL|Error|error' -A1 "$STACK_DIR/matrix.out" | head -40)"
fi
grep -c '^  ok' "$STACK_DIR/matrix.out" | xargs -I{} echo "  ({} cells tried)"

t_section "RPC forgery: the services authorise by the broker-stamped principal and the role"
check_fails "a viewer cannot apply a pipeline, and is told the role it needs" "needs role operator" \
  bash -c "printf 'name: p1\nworkspace: $A\npipeline:\n  input: {generate: {interval: 1s, message: x}}\n  output: {stdout: {}}\n' >'$STACK_DIR/p1.yaml'; CAIRN_USER=view CAIRN_PASSWORD_FILE='$STACK_DIR/secrets/user-view' cairnctl -w $A pipeline apply -f '$STACK_DIR/p1.yaml'"
check_fails "a viewer cannot label a node" "needs role operator" as_user view -w $A node label n1 env=x
check_fails "a viewer cannot create a token" "needs role operator" as_user view -w $A token create
check "a viewer can list nodes" as_user view -w $A node list
check_fails "a viewer of $A cannot read $B" "needs role viewer|permission" as_user view -w $B node list
check_fails "an operator cannot delete the workspace" "needs role admin" as_user ops workspace delete $A --force
check_fails "an operator cannot grant roles" "needs role admin" as_user ops role grant view operator -w $A
check_fails "a workspace admin cannot create users" "needs role admin in workspace \\*|cluster" as_user wsadmin user create eve
check "a workspace admin can grant roles in its workspace" as_user wsadmin role grant view viewer -w $A
check "workspace list shows only the caller's workspaces" \
  bash -c "[[ \$(CAIRN_USER=ops CAIRN_PASSWORD_FILE='$STACK_DIR/secrets/user-ops' cairnctl -o json workspace list | jq -r '[.workspaces[].name] | join(\",\")') == $A ]]"
# A node calling an operator RPC over its own certificate: the RPC topic is
# not even writable (docs/security.md), so the registry never sees it.
D="$STACK_DIR/nodes/$A-n1"
check_fails "a node cannot call operator RPCs (the broker refuses the publish)" "not authori[sz]ed|Not authorized|denied" \
  bash -c "mosquitto_pub -V mqttv5 -h localhost -p $NODE_PORT -i node:$A:n1 -u node:$A:n1 --cafile '$D/ca.crt' --cert '$D/node.crt' --key '$D/node.key' \
    -t cairn/v1/rpc/registry/DeleteWorkspace -m x -q 1 -D publish response-topic cairn/v1/reply/node:$A:n1/node:$A:n1/x 2>&1; exit 1"
eventually "refused calls are audited with the principal" 5 bash -c \
  "psql '$DATABASE_URL' -qAtc \"SELECT count(*) FROM audit_log WHERE actor='user:view' AND detail LIKE '%denied%'\" | grep -qv '^0$'"

t_section "changes reach live sessions within a second"
# A user who views both workspaces, subscribed to both: once its binding on
# $A goes, a probe on $A no longer arrives before a marker on $B.
check "user create watcher" new_user watcher
check "watcher views $A" cairnctl role grant watcher viewer -w $A
check "watcher views $B" cairnctl role grant watcher viewer -w $B
OUT="$STACK_DIR/watcher-live.out"
PID=$(sub_live user:watcher "$(cat "$STACK_DIR/secrets/user-watcher")" "cairn/v1/ws/+/events" "$OUT")
PROBE=0
# probe_cut: true when a fresh probe on $A's events did not arrive before a
# marker on $B's (the subscription is still live: the marker arrives).
probe_cut() {
  PROBE=$((PROBE + 1))
  svc_pub "cairn/v1/ws/$A/events" "probe-$PROBE" && svc_pub "cairn/v1/ws/$B/events" "marker-$PROBE" || return 1
  wait_until 5 grep -q "marker-$PROBE\$" "$OUT" || return 1
  ! grep -q "probe-$PROBE\$" "$OUT"
}
# (each try waits 1 s, so a probe sent before the subscription was live is
# followed by a fresh one)
probe_arrives() { PROBE=$((PROBE + 1)); svc_pub "cairn/v1/ws/$A/events" "probe-$PROBE"; wait_until 1 grep -q "probe-$PROBE\$" "$OUT"; }
eventually "the watcher's live subscription receives $A's events" 10 probe_arrives
check "role revoke watcher -w $A" cairnctl role revoke watcher -w $A
eventually "within a second its live session stops receiving $A (and still receives $B)" 2 probe_cut
kill "$PID" 2>/dev/null

OUT="$STACK_DIR/ops-live.out"
PID=$(sub_live user:ops "$(cat "$STACK_DIR/secrets/user-ops")" "cairn/v1/ws/$A/events" "$OUT")
eventually "the operator's session is live" 5 bash -c "mosquitto_pub -V mqttv5 -h localhost -p $AUTH_PORT --cafile '$CAIRN_CA_FILE' -u svc:scheduler -P \"\$(cat '$STACK_DIR/secrets/svc-scheduler')\" -t cairn/v1/ws/$A/events -m hello -q 1; grep -q hello '$OUT'"
check "user delete ops" cairnctl user delete ops
eventually "a deleted user's live session is cut within a second" 2 gone "$PID"

OUT="$STACK_DIR/cred-live.out"
PID=$(sub_live "$CRED_USER" "$CRED_PW" "cairn/v1/ws/$A/events" "$OUT")
eventually "the integrator's session is live" 5 bash -c "mosquitto_pub -V mqttv5 -h localhost -p $AUTH_PORT --cafile '$CAIRN_CA_FILE' -u svc:scheduler -P \"\$(cat '$STACK_DIR/secrets/svc-scheduler')\" -t cairn/v1/ws/$A/events -m hi -q 1; grep -q hi '$OUT'"
check "credential revoke" cairnctl -w $A credential revoke telegraf
eventually "a revoked credential's live session is cut within a second" 2 gone "$PID"
check_fails "and it cannot log in again" "not authori[sz]ed|Not authorized|refused" \
  mosquitto_sub -V mqttv5 -h localhost -p "$AUTH_PORT" --cafile "$CAIRN_CA_FILE" -u "$CRED_USER" -P "$CRED_PW" -t "cairn/v1/ws/$A/events" -C 1 -W 3

t_section "certificates over time: renewal without a token, revocation by serial"
check "node n4 in $A" bootstrap $A n4
serial_of() { cairnctl -w $A -o json node get "$1" | jq -r '.cert_serial // empty'; }
file_serial() { openssl x509 -noout -serial -in "$STACK_DIR/nodes/$A-n4/node.crt" | cut -d= -f2; }
S1=$(serial_of n4)
check "the registry records the serial it issued at bootstrap" test -n "$S1"
check "node get shows it" bash -c "cairnctl -w $A node get n4 | grep -q 'certificate: serial $S1, expires in'"
# Renewal is due at once with --cert-renew-percent 0 (normally at two thirds).
stack_start_edge "$A-n4" --health-interval 1s --cert-renew-percent 0
renewed() { local s; s=$(serial_of n4); [[ -n "$s" && "$s" != "$S1" ]]; }
eventually "the node renews its certificate over its current connection" 20 renewed
S2=$(serial_of n4)
check "it logs the renewal" grep -q "certificate renewed: serial" "$STACK_DIR/logs/node-$A-n4.log"
check "the new certificate is on disk and the registry knows it" bash -c "[[ \$(openssl x509 -noout -serial -in '$STACK_DIR/nodes/$A-n4/node.crt' | cut -d= -f2 | sed 's/^0*//') == '$S2' ]]"
check "the key stays 0600" test "$(stat -c %a "$STACK_DIR/nodes/$A-n4/node.key")" = 600
eventually "the node is online with the renewed certificate" 15 bash -c "cairnctl -w $A -o json node get n4 | jq -e '.state == \"online\"'"
check "revoking the old serial" cairnctl -w $A cert revoke "$S1"
SEQ=$(cairnctl -w $A -o json node get n4 | jq -r '.health.seq // 0')
eventually "leaves the node (on its new certificate) online and reporting" 10 \
  bash -c "cairnctl -w $A -o json node get n4 | jq -e '.state == \"online\" and ((.health.seq // 0) | tonumber) > $SEQ + 1'"
check_fails "a serial never issued in the workspace is refused" "no certificate with serial" cairnctl -w $A cert revoke ABCDEF0123
check_fails "a user without a role in the workspace cannot revoke its certificates" "needs role operator in workspace $B" as_user wsadmin -w $B cert revoke "$S2"
N4=$(stack_pid "node-$A-n4")
check "revoking the current serial" cairnctl -w $A cert revoke "$S2"
eventually "cuts the node: it stops and exits (its certificate is refused)" 30 gone "$N4"
wait "$N4"
check "with code 78" test "$?" = 78

t_section "node revocation cuts a live node within a second"
stack_start_edge "$A-n2" --health-interval 1s
eventually "n2 is online" 15 bash -c "cairnctl -w $A -o json node get n2 | jq -e '.state == \"online\"'"
check "node revoke n2" cairnctl -w $A node revoke n2
eventually "the broker cut n2 off within a second" 2 grep -Eq "revoked|disconnected|connection lost" "$STACK_DIR/logs/node-$A-n2.log"
N2=$(stack_pid "node-$A-n2")
eventually "n2 learns it is revoked and stops retrying" 30 gone "$N2"
wait "$N2"
check "it exits with code 78 (EX_CONFIG: needs its owner)" test "$?" = 78
check "and says what the owner can do" grep -q "bootstrap" "$STACK_DIR/logs/node-$A-n2.log"

t_finish
