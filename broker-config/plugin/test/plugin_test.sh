#!/usr/bin/env bash
# Integration test of cairn_mosquitto_plugin against a real mosquitto.
#
# Creates a throw-away CA, server and client certificates (openssl CLI), a
# credentials file and a broker config rendered by broker-config/render-conf.sh
# on two free loopback ports, starts mosquitto, and checks authentication,
# topic permissions, the cairn-principal property and revocation with
# mosquitto_pub / mosquitto_sub (MQTT v5).
#
# Environment: CAIRN_PLUGIN (path of cairn_mosquitto_plugin.so; set by CTest),
# CAIRN_TEST_KEEP=1 keeps the temporary directory for inspection.
# Needs: mosquitto, mosquitto_pub, mosquitto_sub, openssl, python3, sha256sum.
# Prints "N passed, M failed"; exits non-zero if anything failed.
# Also: CAIRN_TEST_BROKER_DEBUG=1 adds "log_type all" (the plugin logs every
# denied publish/subscribe at debug level).

# '$share/...' filters below are literal strings, not expansions.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
broker_config_dir=$(cd "$here/../.." && pwd)
plugin=${CAIRN_PLUGIN:-}
if [[ -z "$plugin" || ! -f "$plugin" ]]; then
  echo "plugin_test: CAIRN_PLUGIN must name the built cairn_mosquitto_plugin.so (got '${plugin}')" >&2
  exit 1
fi
plugin=$(cd "$(dirname "$plugin")" && pwd)/$(basename "$plugin")

mosquitto_bin=$(command -v mosquitto || true)
[[ -n "$mosquitto_bin" ]] || mosquitto_bin=/usr/sbin/mosquitto
for tool in "$mosquitto_bin" mosquitto_pub mosquitto_sub openssl python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "plugin_test: missing tool: $tool" >&2; exit 1; }
done

# ---------------------------------------------------------------------------
# Bookkeeping

passed=0
failed=0
broker_pid=
bg_pids=()
declare -A sub_pids   # subscriber name -> pid
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-plugin-test.XXXXXX")

summary_printed=0
cleanup() {
  local rc=$? pid
  if ((summary_printed == 0)); then
    echo "aborted (exit status $rc)"
    echo "$passed passed, $((failed + 1)) failed"
  fi
  for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ -n "$broker_pid" ]]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  if [[ "${CAIRN_TEST_KEEP:-0}" == 1 ]]; then
    echo "plugin_test: kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "PASS: $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $1"
  shift
  local line
  for line in "$@"; do echo "      $line"; done
}

# Polls `cmd...` every 50 ms until it succeeds or `tries` run out.
poll() {
  local tries=$1
  shift
  local i
  for ((i = 0; i < tries; i++)); do
    if "$@"; then return 0; fi
    sleep 0.05
  done
  return 1
}

# ---------------------------------------------------------------------------
# PKI and credentials

chmod 0755 "$work"   # the broker may run as user "mosquitto"
cd "$work"

openssl_quiet() { openssl "$@" 2>>"$work/openssl.log"; }

openssl_quiet req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout ca.key -out ca.crt -days 2 -subj "/CN=Cairn test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

# issue NAME CN EXTENSIONS: NAME.key / NAME.crt signed by the test CA.
issue() {
  local name=$1 cn=$2 ext=$3
  openssl_quiet req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
  printf '%s\n' "$ext" >"$name.ext"
  openssl_quiet x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -out "$name.crt" -extfile "$name.ext"
}
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
issue server localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
cat server.crt ca.crt >server-chain.crt
issue n1 "node:demo:n1" "$client_ext"
issue n2 "node:demo:n2" "$client_ext"
issue x1 "node:other:x1" "$client_ext"
issue evil "svc:evil" "$client_ext"   # a CA-signed certificate that is not a node's
# A certificate for node:demo:n1 from a CA the broker does not trust.
openssl_quiet req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout rogue-ca.key -out rogue-ca.crt -days 2 -subj "/CN=Rogue CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
openssl_quiet req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout rogue.key -out rogue.csr -subj "/CN=node:demo:n1"
openssl_quiet x509 -req -in rogue.csr -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial -days 2 \
  -out rogue.crt -extfile n1.ext
chmod 0644 ./*.crt ./*.key            # test keys: readable by the broker user

hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
pw_registry=reg-secret
pw_observer=obs-secret
pw_alice=alice-secret
pw_late=late-secret
{
  echo "# test credentials"
  echo
  echo "svc:registry $(hash "$pw_registry")"
  echo "svc:observer $(hash "$pw_observer")"
  echo "user:alice   $(hash "$pw_alice")"
  echo "node:demo:n1 $(hash n1-password)  # listed, yet must never log in by password"
} >credentials
chmod 0644 credentials

mkdir -p data log
if [[ $(id -u) == 0 ]] && id mosquitto >/dev/null 2>&1; then
  chown mosquitto: data log   # mosquitto drops to this user when started as root
fi

# ---------------------------------------------------------------------------
# Broker

free_ports() {
  python3 - <<'EOF'
import socket
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r auth_port node_port < <(free_ports)

CAIRN_BROKER_DATA_DIR=$work/data \
CAIRN_BROKER_BIND=127.0.0.1 \
CAIRN_BROKER_AUTH_PORT=$auth_port \
CAIRN_BROKER_NODE_PORT=$node_port \
CAIRN_BROKER_CA_FILE=$work/ca.crt \
CAIRN_BROKER_CERT_FILE=$work/server-chain.crt \
CAIRN_BROKER_KEY_FILE=$work/server.key \
CAIRN_BROKER_PLUGIN=$plugin \
CAIRN_BROKER_CREDENTIALS_FILE=$work/credentials \
CAIRN_BROKER_LOG_FILE=$work/log/mosquitto.log \
  bash "$broker_config_dir/render-conf.sh" "$work/mosquitto.conf"
if [[ -n "${CAIRN_TEST_BROKER_DEBUG:-}" ]]; then echo "log_type all" >>"$work/mosquitto.conf"; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
broker_listening() {
  kill -0 "$broker_pid" 2>/dev/null && port_open "$auth_port" && port_open "$node_port"
}

start_broker() {
  "$mosquitto_bin" -c "$work/mosquitto.conf" >"$work/broker.out" 2>&1 &
  broker_pid=$!
  if ! poll 200 broker_listening; then
    echo "plugin_test: broker did not start listening on $auth_port/$node_port" >&2
    cat "$work/broker.out" "$work/log/mosquitto.log" 2>/dev/null >&2 || true
    exit 1
  fi
}
start_broker

# ---------------------------------------------------------------------------
# Clients

# opts WHO: connection options for a test identity.
opts() {
  local tls_auth=(-h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5)
  case $1 in
    registry) echo "${tls_auth[*]} -u svc:registry -P $pw_registry" ;;
    observer) echo "${tls_auth[*]} -u svc:observer -P $pw_observer" ;;
    alice) echo "${tls_auth[*]} -u user:alice -P $pw_alice" ;;
    bootstrap) echo "${tls_auth[*]} -u bootstrap -P any-token" ;;
    n1 | n2 | x1 | evil)
      echo "-h 127.0.0.1 -p $node_port --cafile $work/ca.crt --cert $work/$1.crt --key $work/$1.key -V mqttv5"
      ;;
    *) echo "unknown identity $1" >&2; return 1 ;;
  esac
}

# pub WHO ARGS...: one QoS 1 publish; stdout+stderr in $work/last-pub.
pub() {
  local who=$1
  shift
  # shellcheck disable=SC2046
  mosquitto_pub $(opts "$who") -q 1 "$@" >"$work/last-pub" 2>&1
}

# start_sub NAME WHO ARGS...: background mosquitto_sub printing
# "topic|user-properties|payload" lines into $work/sub-NAME.
start_sub() {
  local name=$1 who=$2
  shift 2
  # shellcheck disable=SC2046
  mosquitto_sub $(opts "$who") -i "sub-$name" -q 1 -F '%t|%P|%p' "$@" \
    >"$work/sub-$name" 2>"$work/sub-$name.err" &
  bg_pids+=($!)
  sub_pids[$name]=$!
}

has_line() { grep -qF -- "$2" "$work/sub-$1" 2>/dev/null; }

# ready NAME TOPIC: publishes (as svc:registry) to TOPIC until subscriber NAME
# shows it, i.e. its subscriptions are active.
ready() {
  local name=$1 topic=$2 i
  for ((i = 0; i < 100; i++)); do
    pub registry -t "$topic" -m "ready-$name" || true
    if poll 4 has_line "$name" "$topic|"; then return 0; fi
  done
  echo "plugin_test: subscriber $name never became ready" >&2
  cat "$work/sub-$name.err" >&2 || true
  return 1
}

marker_seq=0
# marker NAME WHO TOPIC: WHO publishes a fresh marker on TOPIC and we wait until
# subscriber NAME received it. Everything WHO or others published before (and
# acknowledged) has then been routed.
marker() {
  local name=$1 who=$2 topic=$3
  marker_seq=$((marker_seq + 1))
  local payload="marker-$marker_seq"
  if ! pub "$who" -t "$topic" -m "$payload" ||
    ! poll 200 grep -q -- "^$topic|.*|$payload\$" "$work/sub-$name"; then
    fail "marker $payload from $who on $topic reaches subscriber $name" "$(cat "$work/last-pub")"
  fi
}

# ---------------------------------------------------------------------------
# The checks

echo "broker on 127.0.0.1 ports auth=$auth_port node=$node_port; plugin $plugin"

# An observing service sees everything under cairn/.
start_sub obs observer -t 'cairn/#'
ready obs cairn/v1/test/ready

# -- authentication --------------------------------------------------------
if pub registry -t cairn/v1/test/auth -m ok; then pass "service logs in with its password"; else
  fail "service logs in with its password" "$(cat "$work/last-pub")"; fi
# refused LABEL ARGS...: a login on the auth listener with ARGS must get a
# "Not authorized" CONNACK.
refused() {
  local label=$1
  shift
  if ! mosquitto_pub -h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 "$@" \
    -t cairn/v1/test/auth -m refused -q 1 >"$work/last-pub" 2>&1 &&
    grep -q "Connection error: Not authorized" "$work/last-pub"; then
    pass "$label"
  else
    fail "$label" "$(cat "$work/last-pub")"
  fi
}
refused "wrong password is rejected" -u svc:registry -P wrong-password
refused "missing password is rejected" -u svc:registry
refused "unknown principal is rejected" -u svc:nobody -P x
refused "node principal with a password is rejected (even if listed)" -u node:demo:n1 -P n1-password
refused "username with a wildcard is rejected" -u 'svc:a+b' -P x
refused "username with a slash is rejected" -u 'user:a/b' -P x
refused "anonymous client is rejected"
if ! mosquitto_pub -h 127.0.0.1 -p "$node_port" --cafile "$work/ca.crt" -V mqttv5 -u node:demo:n1 \
  -t cairn/v1/ws/demo/nodes/n1/health -m x -q 1 >/dev/null 2>&1; then
  pass "node listener refuses a client without certificate"
else
  fail "node listener refuses a client without certificate"
fi
if ! mosquitto_pub -h 127.0.0.1 -p "$node_port" --cafile "$work/ca.crt" -V mqttv5 \
  --cert "$work/rogue.crt" --key "$work/rogue.key" \
  -t cairn/v1/ws/demo/nodes/n1/health -m rogue -q 1 >/dev/null 2>&1 &&
  poll 100 grep -q "certificate verify failed" "$work/log/mosquitto.log"; then
  pass "node listener refuses a certificate from another CA"
else
  fail "node listener refuses a certificate from another CA"
fi
if ! grep -q "$pw_registry\|wrong-password\|n1-password" "$work/log/mosquitto.log"; then
  pass "passwords never reach the broker log"
else
  fail "passwords never reach the broker log"
fi

# Credentials are re-read when the file changes.
late_hash=$(hash "$pw_late")
cp credentials credentials.new
echo "svc:late $late_hash" >>credentials.new
chmod 0644 credentials.new
mv credentials.new credentials
if mosquitto_pub -h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 -u svc:late \
  -P "$pw_late" -t cairn/v1/test/auth -m x -q 1 >"$work/last-pub" 2>&1; then
  pass "credentials file is re-read when it changes"
else
  fail "credentials file is re-read when it changes" "$(cat "$work/last-pub")"
fi

# -- bootstrap -------------------------------------------------------------
if pub bootstrap -t cairn/v1/rpc/registry/Bootstrap -m boot-1 &&
  poll 200 has_line obs "cairn/v1/rpc/registry/Bootstrap|cairn-principal:bootstrap|boot-1"; then
  pass "bootstrap publishes to cairn/v1/rpc/registry/Bootstrap, stamped cairn-principal=bootstrap"
else
  fail "bootstrap publishes to cairn/v1/rpc/registry/Bootstrap, stamped cairn-principal=bootstrap" \
    "$(cat "$work/last-pub")" "$(tail -3 "$work/sub-obs")"
fi
pub bootstrap -t cairn/v1/ws/demo/nodes/n1/health -m boot-denied || true
pub bootstrap -t cairn/v1/rpc/registry/Other -m boot-denied-2 || true
marker obs registry cairn/v1/test/m
if ! grep -q "boot-denied" "$work/sub-obs"; then
  pass "bootstrap cannot publish to a node topic or another RPC"
else
  fail "bootstrap cannot publish to a node topic or another RPC"
fi

# -- nodes: writing ----------------------------------------------------------
if pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m n1-health-1 &&
  poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|n1-health-1"; then
  pass "node publishes its own health; subscriber sees cairn-principal=node:demo:n1"
else
  fail "node publishes its own health; subscriber sees cairn-principal=node:demo:n1" \
    "$(cat "$work/last-pub")" "$(tail -3 "$work/sub-obs")"
fi
for t in status logs; do
  if pub n1 -t "cairn/v1/ws/demo/nodes/n1/$t" -m "n1-$t" &&
    poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/$t|cairn-principal:node:demo:n1|n1-$t"; then
    pass "node publishes its own $t"
  else
    fail "node publishes its own $t" "$(cat "$work/last-pub")"
  fi
done
if pub n1 -t cairn/v1/ws/demo/data/temps -m n1-data && pub n1 -t cairn/v1/rpc/registry/Renew -m n1-rpc &&
  poll 200 has_line obs "cairn/v1/ws/demo/data/temps|cairn-principal:node:demo:n1|n1-data" &&
  poll 200 has_line obs "cairn/v1/rpc/registry/Renew|cairn-principal:node:demo:n1|n1-rpc"; then
  pass "node publishes data streams of its workspace and RPCs"
else
  fail "node publishes data streams of its workspace and RPCs" "$(cat "$work/last-pub")"
fi

if pub x1 -t cairn/v1/ws/other/nodes/x1/health -m x1-health &&
  poll 200 has_line obs "cairn/v1/ws/other/nodes/x1/health|cairn-principal:node:other:x1|x1-health"; then
  pass "node of another workspace publishes its own health"
else
  fail "node of another workspace publishes its own health" "$(cat "$work/last-pub")"
fi

denied_write() {  # denied_write LABEL TOPIC
  local label=$1 topic=$2 payload
  payload="denied-$RANDOM$RANDOM"
  pub n1 -t "$topic" -m "$payload" || true
  local puback
  puback=$(cat "$work/last-pub")
  marker obs n1 cairn/v1/ws/demo/nodes/n1/logs
  if ! grep -qF -- "$payload" "$work/sub-obs" && [[ "$puback" == *"Not authorized"* ]]; then
    pass "$label"
  else
    fail "$label" "PUBACK: $puback" "$(grep -F -- "$payload" "$work/sub-obs" || true)"
  fi
}
denied_write "node cannot publish another node's health" cairn/v1/ws/demo/nodes/n2/health
denied_write "node cannot publish to another workspace" cairn/v1/ws/other/nodes/n1/health
denied_write "node cannot publish its own desired state" cairn/v1/ws/demo/nodes/n1/desired
denied_write "node cannot publish workspace events" cairn/v1/ws/demo/events
denied_write "node cannot publish pipeline configs" cairn/v1/ws/demo/pipelines/p/1
denied_write "node cannot publish to cairn/v1/sys/revoke" cairn/v1/sys/revoke
denied_write "node cannot publish to a deeper RPC topic" cairn/v1/rpc/registry/Bootstrap/x

# Forged cairn-principal: refused, not passed on.
pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m forged-1 -D PUBLISH user-property cairn-principal svc:scheduler || true
forged_puback=$(cat "$work/last-pub")
pub registry -t cairn/v1/ws/demo/events -m forged-2 -D PUBLISH user-property Cairn-Principal user:root || true
marker obs n1 cairn/v1/ws/demo/nodes/n1/logs
if ! grep -q "forged-" "$work/sub-obs" && [[ "$forged_puback" == *"Not authorized"* ]]; then
  pass "messages carrying a cairn-principal property are dropped"
else
  fail "messages carrying a cairn-principal property are dropped" "$(grep forged- "$work/sub-obs")" "$forged_puback"
fi
if pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m with-props -D PUBLISH user-property trace abc &&
  poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/health|trace:abc cairn-principal:node:demo:n1|with-props"; then
  pass "other user properties are kept; cairn-principal is appended"
else
  fail "other user properties are kept; cairn-principal is appended" "$(grep with-props "$work/sub-obs" || true)"
fi

# A CA-signed certificate whose CN is not a node principal gets nowhere.
pub evil -t cairn/v1/ws/demo/events -m evil-1 || true
evil_out=$(cat "$work/last-pub")
marker obs registry cairn/v1/test/m
if ! grep -q "evil-1" "$work/sub-obs"; then
  pass "certificate with a non-node CN cannot act as that principal"
else
  fail "certificate with a non-node CN cannot act as that principal" "$evil_out"
fi

# Retained status of a node reaches later subscribers (check_retain_source).
pub n1 -t cairn/v1/ws/demo/nodes/n1/status -r -m n1-online
start_sub late observer -t cairn/v1/ws/demo/nodes/+/status
if poll 200 has_line late "cairn/v1/ws/demo/nodes/n1/status|cairn-principal:node:demo:n1|n1-online"; then
  pass "retained node status is delivered to a later subscriber with its principal"
else
  fail "retained node status is delivered to a later subscriber with its principal" "$(cat "$work/sub-late")"
fi

# -- nodes: reading ------------------------------------------------------------
start_sub n1 n1 -t 'cairn/v1/ws/demo/#' -t 'cairn/v1/reply/sub-n1/#'
ready n1 cairn/v1/ws/demo/test-ready
pub registry -t cairn/v1/ws/demo/nodes/n1/desired -m n1-desired
pub registry -t cairn/v1/reply/sub-n1/1 -m n1-reply
if poll 200 has_line n1 "cairn/v1/ws/demo/nodes/n1/desired|cairn-principal:svc:registry|n1-desired" &&
  poll 200 has_line n1 "cairn/v1/reply/sub-n1/1|cairn-principal:svc:registry|n1-reply"; then
  pass "node reads its desired state and its replies, stamped by the service"
else
  fail "node reads its desired state and its replies, stamped by the service" "$(cat "$work/sub-n1")"
fi

# Denied subscriptions: the filter is refused, so nothing arrives through it.
start_sub n2wide n2 -t 'cairn/v1/ws/+/#' -t 'cairn/v1/ws/demo/nodes/n2/desired'
start_sub n2other n2 -t 'cairn/v1/ws/other/#' -t '$share/g/cairn/v1/ws/other/#' -t 'cairn/#' \
  -t 'cairn/v1/reply/sub-n1/#' -t '$share/n2grp/cairn/v1/ws/demo/nodes/n2/desired'
ready n2wide cairn/v1/ws/demo/nodes/n2/desired
ready n2other cairn/v1/ws/demo/nodes/n2/desired
pub registry -t cairn/v1/ws/other/events -m other-ws-event
pub registry -t cairn/v1/reply/sub-n1/2 -m reply-for-n1
pub registry -t cairn/v1/test/m -m outside-cairn-v1-ws
marker n2wide registry cairn/v1/ws/demo/nodes/n2/desired
marker n2other registry cairn/v1/ws/demo/nodes/n2/desired
if ! grep -q "other-ws-event" "$work/sub-n2wide"; then
  pass "node cannot subscribe to cairn/v1/ws/+/#"
else
  fail "node cannot subscribe to cairn/v1/ws/+/#"
fi
if ! grep -q "other-ws-event\|reply-for-n1\|outside-cairn-v1-ws" "$work/sub-n2other"; then
  pass "node cannot subscribe to another workspace (also via \$share), another client's replies or cairn/#; may use \$share on its own topics"
else
  fail "node cannot subscribe to another workspace (also via \$share), another client's replies or cairn/#" \
    "$(cat "$work/sub-n2other")"
fi

# -- operators and shared subscriptions ------------------------------------------
start_sub regshare registry -t '$share/registry/cairn/v1/rpc/registry/+'
ready regshare cairn/v1/rpc/registry/Ready
if pub alice -t cairn/v1/rpc/registry/ListNodes -m alice-rpc &&
  poll 200 has_line regshare "cairn/v1/rpc/registry/ListNodes|cairn-principal:user:alice|alice-rpc"; then
  pass "operator RPC reaches a shared subscription with cairn-principal=user:alice"
else
  fail "operator RPC reaches a shared subscription with cairn-principal=user:alice" "$(cat "$work/last-pub")"
fi
pub alice -t cairn/v1/ws/demo/nodes/n1/desired -m alice-desired || true
marker obs alice cairn/v1/rpc/registry/Ping
if ! grep -q "alice-desired" "$work/sub-obs"; then pass "operator cannot write desired state"; else
  fail "operator cannot write desired state"; fi
start_sub alice alice -t 'cairn/v1/rpc/#' -t 'cairn/v1/sys/#' -t 'cairn/v1/ws/demo/events'
ready alice cairn/v1/ws/demo/events
pub registry -t cairn/v1/rpc/scheduler/Apply -m someone-elses-rpc
pub registry -t cairn/v1/sys/revoke -m ''
marker alice registry cairn/v1/ws/demo/events
if ! grep -q "someone-elses-rpc\|^cairn/v1/sys" "$work/sub-alice"; then
  pass "operator reads workspaces but not others' RPCs or cairn/v1/sys"
else
  fail "operator reads workspaces but not others' RPCs or cairn/v1/sys" "$(cat "$work/sub-alice")"
fi
start_sub bootreply bootstrap -t 'cairn/v1/reply/sub-bootreply/#' -t 'cairn/v1/reply/sub-n1/#' -t 'cairn/v1/ws/demo/#'
ready bootreply cairn/v1/reply/sub-bootreply/ready
pub registry -t cairn/v1/reply/sub-n1/3 -m bootstrap-snoop
pub registry -t cairn/v1/ws/demo/events -m bootstrap-ws
marker bootreply registry cairn/v1/reply/sub-bootreply/m
if ! grep -q "bootstrap-snoop\|bootstrap-ws" "$work/sub-bootreply"; then
  pass "bootstrap reads only its own reply topic"
else
  fail "bootstrap reads only its own reply topic" "$(cat "$work/sub-bootreply")"
fi

# -- revocation ------------------------------------------------------------------
kicked_pid=${sub_pids[n1]}
if pub registry -t cairn/v1/sys/revoke -m node:demo:n1 &&
  poll 200 grep -q "revoked 'node:demo:n1'" "$work/log/mosquitto.log"; then
  pass "svc:registry revokes node:demo:n1"
else
  fail "svc:registry revokes node:demo:n1" "$(tail -5 "$work/log/mosquitto.log")"
fi
if poll 200 grep -q "Client sub-n1 .*disconnected\|Client sub-n1 closed" "$work/log/mosquitto.log"; then
  pass "revoked node is disconnected at once"
else
  fail "revoked node is disconnected at once" "$(grep sub-n1 "$work/log/mosquitto.log" | tail -3)"
fi
pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m after-revoke || true
revoked_pub=$(cat "$work/last-pub")
marker obs n2 cairn/v1/ws/demo/nodes/n2/health
if ! grep -q "after-revoke" "$work/sub-obs" && [[ "$revoked_pub" == *"Not authorized"* ]]; then
  pass "revoked node cannot publish afterwards"
else
  fail "revoked node cannot publish afterwards" "$revoked_pub"
fi
if grep -qx "node:demo:n1" "$work/data/revoked-principals" 2>/dev/null; then
  pass "revocation is written to the revocations file"
else
  fail "revocation is written to the revocations file"
fi
pub observer -t cairn/v1/sys/revoke -m node:demo:n2 || true
pub alice -t cairn/v1/sys/revoke -m node:demo:n2 || true
pub n2 -t cairn/v1/ws/demo/nodes/n2/health -m n2-still-ok
if poll 200 has_line obs "cairn/v1/ws/demo/nodes/n2/health|cairn-principal:node:demo:n2|n2-still-ok" &&
  grep -q "ignored cairn/v1/sys/revoke from svc:observer" "$work/log/mosquitto.log"; then
  pass "only svc:registry can revoke (another service is ignored, an operator denied)"
else
  fail "only svc:registry can revoke (another service is ignored, an operator denied)"
fi
# The node listener authenticates by certificate without BASIC_AUTH, so a
# revoked node can still complete a CONNECT: it must get nothing and be dropped.
# (mosquitto_pub -l stays connected while its stdin is open.)
mkfifo "$work/n1.fifo"
# shellcheck disable=SC2046
mosquitto_pub $(opts n1) -i pub-n1again -q 1 -t cairn/v1/ws/demo/nodes/n1/health -l \
  <"$work/n1.fifo" >"$work/pub-n1again" 2>&1 &
bg_pids+=($!)
exec 7>"$work/n1.fifo"
echo again-1 >&7 || true
if poll 200 grep -q "Client pub-n1again .*disconnected\|Client pub-n1again closed\|denied connect of 'node:demo:n1'.*revoked" \
  "$work/log/mosquitto.log"; then
  marker obs registry cairn/v1/test/m
  if ! grep -q "again-1" "$work/sub-obs"; then
    pass "revoked node that reconnects gets nothing and is dropped"
  else
    fail "revoked node that reconnects gets nothing and is dropped" "its message was delivered"
  fi
else
  fail "revoked node that reconnects gets nothing and is dropped" "$(grep pub-n1again "$work/log/mosquitto.log")"
fi
exec 7>&-

pub registry -t cairn/v1/sys/unrevoke -m node:demo:n1
if poll 200 grep -q "unrevoked 'node:demo:n1'" "$work/log/mosquitto.log" &&
  pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m after-unrevoke &&
  poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|after-unrevoke"; then
  pass "unrevoked node can publish again"
else
  fail "unrevoked node can publish again" "$(cat "$work/last-pub")"
fi
kill "$kicked_pid" 2>/dev/null || true

# -- revocations survive a broker restart ------------------------------------------
pub registry -t cairn/v1/sys/revoke -m node:demo:n2
poll 200 grep -qx "node:demo:n2" "$work/data/revoked-principals" || true
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null || true
broker_pid=
start_broker
pub n2 -t cairn/v1/ws/demo/nodes/n2/health -m after-restart || true
if [[ "$(cat "$work/last-pub")" == *"Not authorized"* ]] &&
  grep -q "cairn: 1 principals revoked" "$work/log/mosquitto.log"; then
  pass "revocations survive a broker restart"
else
  fail "revocations survive a broker restart" "$(cat "$work/last-pub")"
fi
if pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m n1-after-restart &&
  [[ "$(cat "$work/last-pub")" != *"Not authorized"* ]]; then
  pass "other nodes work after the restart"
else
  fail "other nodes work after the restart" "$(cat "$work/last-pub")"
fi

echo
echo "$passed passed, $failed failed"
summary_printed=1
if ((failed > 0)); then
  echo "--- broker log (tail) ---"
  tail -40 "$work/log/mosquitto.log" || true
  exit 1
fi
