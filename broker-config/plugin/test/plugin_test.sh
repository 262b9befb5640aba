#!/usr/bin/env bash
# Integration test of cairn_mosquitto_plugin against a real mosquitto.
#
# Creates a throw-away CA, server and client certificates (openssl CLI), a
# credentials file and a broker config rendered by broker-config/render-conf.sh
# on two free loopback ports, starts mosquitto, and checks authentication,
# client ids, topic permissions, last wills, RPC response topics, the
# cairn-principal property and revocation with mosquitto_pub / mosquitto_sub
# (MQTT v5). Node clients connect with their principal as client id (as the
# node daemon does), so at most one connection per node is open at a time.
#
# Environment: CAIRN_PLUGIN (path of cairn_mosquitto_plugin.so; set by CTest),
# CAIRN_TEST_KEEP=1 keeps the temporary directory for inspection,
# CAIRN_BROKER_PRELOAD (optional) is put in the broker's LD_PRELOAD (the
# sanitizer build sets it to the ASan/UBSan runtime a sanitized plugin needs).
# The checkout and build tree may live where user "mosquitto" cannot enter
# (a 0700 home or mktemp -d): the broker reads only a private copy of the
# plugin and its files in a temporary directory it can read.
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
if [[ $(id -u) == 0 ]] && id mosquitto >/dev/null 2>&1 &&
  ! runuser -u mosquitto -- test -x "$work" 2>/dev/null; then
  echo "plugin_test: user mosquitto cannot enter $work (TMPDIR=${TMPDIR:-}); set TMPDIR to a directory it can reach" >&2
  exit 1
fi
# The broker's own copy of the plugin: the build tree may be unreadable to it.
cp "$plugin" "$work/cairn_mosquitto_plugin.so"
chmod 0644 "$work/cairn_mosquitto_plugin.so"
plugin=$work/cairn_mosquitto_plugin.so

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
chmod 0644 ./*.crt ./*.key            # test client keys: the test reads them
chmod 0600 server.key                 # render-conf.sh refuses a group/world-readable broker key
if [[ $(id -u) == 0 ]] && id mosquitto >/dev/null 2>&1; then chown mosquitto: server.key; fi

hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
# pbkdf2 PASSWORD: the access-file hash (policy/password.h format) with few
# iterations, so that the test stays fast.
pbkdf2() {
  python3 -c '
import base64, hashlib, os, sys
b64 = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")
salt = os.urandom(16)
dk = hashlib.pbkdf2_hmac("sha256", sys.argv[1].encode(), salt, 1000, 32)
print("pbkdf2-sha256$1000$" + b64(salt) + "$" + b64(dk))
' "$1"
}
# write_access LINES...: the access snapshot (policy/access.h), atomically.
write_access() {
  {
    echo "cairn-access 1"
    echo "generated_ms $(date +%s%3N)"
    printf '%s\n' "$@"
    echo "end"
  } >"$work/access.new"
  chmod 0644 "$work/access.new"
  mv "$work/access.new" "$work/access"
}
pw_registry=reg-secret
pw_observer=obs-secret
pw_alice=alice-secret
pw_late=late-secret
{
  echo "# test credentials"
  echo
  echo "svc:registry $(hash "$pw_registry")"
  echo "svc:observer $(hash "$pw_observer")"
  echo "node:demo:n1 $(hash n1-password)  # listed, yet must never log in by password"
} >credentials
chmod 0644 credentials
alice_hash=$(pbkdf2 "$pw_alice")
access_base=("user alice $alice_hash" "role alice * admin")
write_access "${access_base[@]}"

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
CAIRN_BROKER_ACCESS_FILE=$work/access \
CAIRN_BROKER_LIMITS="refusal_summary_seconds=1 bootstrap_max_connections=3 bootstrap_max_session_seconds=4" \
  bash "$broker_config_dir/render-conf.sh" "$work/mosquitto.conf"
if [[ -n "${CAIRN_TEST_BROKER_DEBUG:-}" ]]; then echo "log_type all" >>"$work/mosquitto.conf"; fi
# CAIRN_TEST_OLD_PLUGIN=1: run the checks against a plugin from before the
# access file and the limits existed (to see the new checks fail on it).
if [[ -n "${CAIRN_TEST_OLD_PLUGIN:-}" ]]; then
  sed -i '/^plugin_opt_access_file\|^plugin_opt_[a-z_]* [0-9.]*$/d' "$work/mosquitto.conf"
  sed -i 's/^use_identity_as_username false/use_identity_as_username true/' "$work/mosquitto.conf"
  echo "user:alice $(hash "$pw_alice")" >>credentials
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
broker_listening() {
  kill -0 "$broker_pid" 2>/dev/null && port_open "$auth_port" && port_open "$node_port"
}

start_broker() {
  if [[ -n "${CAIRN_BROKER_PRELOAD:-}" ]]; then
    LD_PRELOAD="$CAIRN_BROKER_PRELOAD" "$mosquitto_bin" -c "$work/mosquitto.conf" >"$work/broker.out" 2>&1 &
  else
    "$mosquitto_bin" -c "$work/mosquitto.conf" >"$work/broker.out" 2>&1 &
  fi
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

# client_id WHO: the client id the helpers use for WHO. A node's client id is
# its principal; the others get a fixed id, so that their reply prefix
# cairn/v1/reply/{id}/ is known.
client_id() {
  case $1 in
    n1) echo node:demo:n1 ;;
    n2) echo node:demo:n2 ;;
    x1) echo node:other:x1 ;;
    *) echo "pub-$1" ;;
  esac
}
# principal_of WHO: the principal (MQTT username) of a test identity.
principal_of() {
  case $1 in
    n1) echo node:demo:n1 ;;
    n2) echo node:demo:n2 ;;
    x1) echo node:other:x1 ;;
    registry) echo svc:registry ;;
    observer) echo svc:observer ;;
    alice) echo user:alice ;;
    bootstrap) echo bootstrap ;;
    *) echo "$1" ;;
  esac
}

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

# pub WHO ARGS...: one QoS 1 publish; stdout+stderr in $work/last-pub. Uses
# the client id of WHO unless ARGS has -i. An RPC request (-t cairn/v1/rpc/...)
# gets a response topic under that id's reply prefix unless ARGS sets one or
# NO_AUTO_RT=1.
pub() {
  local who=$1
  shift
  local id extra=() principal
  id=$(client_id "$who")
  principal=$(principal_of "$who")
  if [[ " $* " != *" -i "* ]]; then extra+=(-i "$id"); fi
  if [[ " $* " == *" -t cairn/v1/rpc/"* && " $* " != *" response-topic "* &&
    "${NO_AUTO_RT:-0}" != 1 ]]; then
    if [[ -n "${CAIRN_TEST_OLD_PLUGIN:-}" ]]; then principal=; else principal+=/; fi
    extra+=(-D publish response-topic "cairn/v1/reply/$principal$id/test")
  fi
  # shellcheck disable=SC2046
  mosquitto_pub $(opts "$who") "${extra[@]}" -q 1 "$@" >"$work/last-pub" 2>&1
}

# start_sub NAME WHO ARGS...: background mosquitto_sub printing
# "topic|user-properties|payload" lines into $work/sub-NAME. Its client id is
# "sub-NAME", or the principal for a node.
start_sub() {
  local name=$1 who=$2 id
  shift 2
  id=$(client_id "$who")
  [[ "$id" == node:* ]] || id="sub-$name"
  # shellcheck disable=SC2046
  mosquitto_sub $(opts "$who") -i "$id" -q 1 -F '%t|%P|%p' "$@" \
    >"$work/sub-$name" 2>"$work/sub-$name.err" &
  bg_pids+=($!)
  sub_pids[$name]=$!
}

# stop_sub NAME: ends subscriber NAME and waits until it is gone.
stop_sub() {
  local pid=${sub_pids[$1]}
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# log_mark: the current length of the broker log, for log_since.
log_mark() { wc -l <"$work/log/mosquitto.log"; }
# log_since MARK GREP-ARGS...: grep in the broker log lines after MARK.
log_since() {
  local from=$1
  shift
  tail -n "+$((from + 1))" "$work/log/mosquitto.log" | grep -q "$@"
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
  if [[ -n "${CAIRN_TEST_OLD_PLUGIN:-}" ]]; then fail "subscriber $name becomes ready"; return 0; fi
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
refused "wrong password is rejected" -u svc:registry -P not-the-pass-xyzzy
refused "missing password is rejected" -u svc:registry
refused "unknown principal is rejected" -u svc:nobody -P x
refused "node principal with a password is rejected (even if listed)" -u node:demo:n1 -P n1-password
refused "username with a wildcard is rejected" -u 'svc:a+b' -P x
refused "username with a slash is rejected" -u 'user:a/b' -P x
refused "anonymous client is rejected"
# Refused in the TLS handshake: the broker logs that no certificate came.
nocert_mark=$(log_mark)
if ! mosquitto_pub -h 127.0.0.1 -p "$node_port" --cafile "$work/ca.crt" -V mqttv5 -u node:demo:n1 \
  -t cairn/v1/ws/demo/nodes/n1/health -m x -q 1 >"$work/last-pub" 2>&1 &&
  poll 100 log_since "$nocert_mark" -i "peer did not return a certificate"; then
  pass "node listener refuses a client without certificate"
else
  fail "node listener refuses a client without certificate" "$(cat "$work/last-pub")"
fi
# Refused in the TLS handshake: the broker logs the failed verification of
# this very attempt (read after a mark, not anywhere in the log).
rogue_mark=$(log_mark)
if ! mosquitto_pub -h 127.0.0.1 -p "$node_port" --cafile "$work/ca.crt" -V mqttv5 \
  --cert "$work/rogue.crt" --key "$work/rogue.key" \
  -t cairn/v1/ws/demo/nodes/n1/health -m rogue -q 1 >/dev/null 2>&1 &&
  poll 100 log_since "$rogue_mark" -i "certificate verify failed"; then
  pass "node listener refuses a certificate from another CA"
else
  fail "node listener refuses a certificate from another CA"
fi
if ! grep -q "$pw_registry\|not-the-pass-xyzzy\|n1-password\|$pw_alice" "$work/log/mosquitto.log"; then
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
if pub n1 -t cairn/v1/ws/demo/data/temps -m n1-data &&
  poll 200 has_line obs "cairn/v1/ws/demo/data/temps|cairn-principal:node:demo:n1|n1-data"; then
  pass "node publishes data streams of its workspace"
else
  fail "node publishes data streams of its workspace" "$(cat "$work/last-pub")"
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
# Nodes call no RPC (their last will would reach the service unstamped); the
# request has a valid response topic, so only the topic permission refuses it.
denied_write "node cannot publish RPC requests" cairn/v1/rpc/registry/ListWorkspaces

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

# -- client ids ------------------------------------------------------------------
# A node's client id is its principal. Client ids starting with "node:" are
# reserved for nodes: a password client using one would otherwise be handed
# the node's session (Mosquitto disconnects the connected node first).
mkfifo "$work/n1live.fifo"
# shellcheck disable=SC2046
mosquitto_pub $(opts n1) -i node:demo:n1 -q 1 -t cairn/v1/ws/demo/nodes/n1/health -l \
  <"$work/n1live.fifo" >"$work/pub-n1live" 2>&1 &
live_pid=$!
bg_pids+=("$live_pid")
exec 8>"$work/n1live.fifo"
echo live-before >&8
if ! poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|live-before"; then
  fail "node n1 stays connected to publish (setup)" "$(cat "$work/pub-n1live")"
fi
takeover_mark=$(log_mark)
if ! mosquitto_sub -h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 -u bootstrap -P any-token \
  -i node:demo:n1 -t 'cairn/v1/reply/node:demo:n1/#' -C 1 -W 3 >"$work/last-pub" 2>&1 &&
  grep -q "Connection error: Not authorized" "$work/last-pub"; then
  pass "bootstrap cannot connect with a node's client id"
else
  fail "bootstrap cannot connect with a node's client id" "$(cat "$work/last-pub")"
fi
refused "a service cannot connect with a node's client id" -u svc:registry -P "$pw_registry" -i node:demo:n1
refused "client ids starting with 'node:' are reserved for nodes" -u user:alice -P "$pw_alice" -i node:demo:n9
echo live-after >&8
if poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|live-after" &&
  ! log_since "$takeover_mark" "Client node:demo:n1 already connected"; then
  pass "a refused client-id takeover leaves the connected node alone (it still publishes)"
else
  fail "a refused client-id takeover leaves the connected node alone (it still publishes)" \
    "$(tail -n "+$((takeover_mark + 1))" "$work/log/mosquitto.log" | grep node:demo:n1)"
fi
exec 8>&-
kill "$live_pid" 2>/dev/null || true
wait "$live_pid" 2>/dev/null || true

# A node certificate used with another client id gets nothing and is dropped.
wrong_mark=$(log_mark)
pub n1 -i n1-other-id -t cairn/v1/ws/demo/nodes/n1/health -m wrong-id-1 || true
wrong_pub=$(cat "$work/last-pub")
marker obs registry cairn/v1/test/m
if ! grep -q "wrong-id-1" "$work/sub-obs" && [[ "$wrong_pub" == *"Not authorized"* ]]; then
  pass "node certificate with another client id cannot publish"
else
  fail "node certificate with another client id cannot publish" "PUBACK: $wrong_pub"
fi
if poll 200 log_since "$wrong_mark" "denied connect of 'node:demo:n1' (client n1-other-id).*certificate-mismatch"; then
  pass "node certificate with another client id is refused at connect"
else
  fail "node certificate with another client id is refused at connect"
fi
# Retained messages arrive on subscribe, so an accepted subscription shows at once.
pub registry -r -t cairn/v1/ws/demo/nodes/n1/desired -m desired-retained
pub registry -r -t cairn/v1/reply/node:demo:n1/kept -m reply-retained
# shellcheck disable=SC2046
mosquitto_sub $(opts n1) -i n1-other-id -t cairn/v1/ws/demo/nodes/n1/desired -C 1 -W 3 \
  >"$work/sub-wrongid" 2>&1 || true
# shellcheck disable=SC2046
mosquitto_sub $(opts n2) -i node:demo:n1 -t 'cairn/v1/reply/node:demo:n1/#' -t cairn/v1/ws/demo/nodes/n1/desired \
  -C 1 -W 3 >"$work/sub-n2asn1" 2>&1 || true
if ! grep -q "desired-retained" "$work/sub-wrongid"; then
  pass "node certificate with another client id cannot subscribe"
else
  fail "node certificate with another client id cannot subscribe" "$(cat "$work/sub-wrongid")"
fi
if ! grep -q "reply-retained\|desired-retained" "$work/sub-n2asn1"; then
  pass "node certificate using another node's client id receives nothing (not even that node's replies)"
else
  fail "node certificate using another node's client id receives nothing (not even that node's replies)" \
    "$(cat "$work/sub-n2asn1")"
fi
pub registry -r -n -t cairn/v1/ws/demo/nodes/n1/desired
pub registry -r -n -t cairn/v1/reply/node:demo:n1/kept

# -- last wills ------------------------------------------------------------------
# Wills skip the MESSAGE event (no cairn-principal stamp, no response-topic
# check); Mosquitto only checks the will's topic when it sends it.
start_sub rpcsvc registry -t 'cairn/v1/rpc/#'
ready rpcsvc cairn/v1/rpc/registry/Ready
# will_then_kill LABEL-SUFFIX WILL-ARGS...: connects n1 with a will, waits until
# the broker has it, kills the client (no DISCONNECT) and waits until the
# broker noticed, i.e. sent or dropped the will.
# WHO defaults to n1; set WILL_WHO / WILL_ID for another identity.
will_then_kill() {
  local mark pid who=${WILL_WHO:-n1} id=${WILL_ID:-node:demo:n1}
  mark=$(log_mark)
  # shellcheck disable=SC2046
  mosquitto_sub $(opts "$who") -i "$id" -q 1 -t "cairn/v1/reply/$(principal_of "$who")/$id/#" "$@" >"$work/sub-will" 2>&1 &
  pid=$!
  bg_pids+=("$pid")
  if ! poll 200 log_since "$mark" "New client connected .* as $id "; then
    fail "$who with a will connects (setup)" "$(cat "$work/sub-will")"
  fi
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ! poll 200 log_since "$mark" "Client $id closed its connection\|Client $id disconnected"; then
    fail "broker notices the killed $who (setup)"
  fi
}
will_then_kill --will-topic cairn/v1/rpc/registry/CreateWorkspace --will-payload will-rpc-1 --will-qos 1 \
  -D will response-topic cairn/v1/reply/node:demo:n1/node:demo:n1/x
marker rpcsvc registry cairn/v1/rpc/registry/Ping
if ! grep -q "will-rpc-1" "$work/sub-rpcsvc"; then
  pass "a node's last will on an RPC topic is not delivered"
else
  fail "a node's last will on an RPC topic is not delivered" "$(grep will-rpc-1 "$work/sub-rpcsvc")"
fi
# Control: a will on the node's own status is delivered, but unstamped.
will_then_kill --will-topic cairn/v1/ws/demo/nodes/n1/status --will-payload will-status-1 --will-qos 1
if poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/status||will-status-1"; then
  pass "a node's last will on its status is delivered, without cairn-principal (wills skip MESSAGE)"
else
  fail "a node's last will on its status is delivered, without cairn-principal (wills skip MESSAGE)" \
    "$(grep will-status-1 "$work/sub-obs" || true)"
fi

# Operators and bootstrap may publish RPC requests, but their wills never
# reach a service: a will could carry a forged cairn-principal and any response
# topic, and the plugin never sees either.
WILL_WHO=alice WILL_ID=ctl-will will_then_kill --will-topic cairn/v1/rpc/registry/CreateWorkspace \
  --will-payload will-alice-1 --will-qos 1 -D will user-property cairn-principal user:root \
  -D will response-topic cairn/v1/reply/someone-else/x
WILL_WHO=bootstrap WILL_ID=boot-will will_then_kill --will-topic cairn/v1/rpc/registry/Bootstrap \
  --will-payload will-boot-1 --will-qos 1 -D will user-property cairn-principal user:root \
  -D will response-topic cairn/v1/reply/bootstrap/boot-will/x
WILL_WHO=alice WILL_ID=ctl-will will_then_kill --will-topic cairn/v1/rpc/registry/CreateWorkspace \
  --will-payload will-alice-2 --will-qos 1 --will-retain -D will response-topic cairn/v1/reply/user:alice/ctl-will/x
marker rpcsvc registry cairn/v1/rpc/registry/Ping
if ! grep -q "will-alice-\|will-boot-" "$work/sub-rpcsvc"; then
  pass "operator and bootstrap wills on RPC topics (e.g. with a forged cairn-principal) are not delivered"
else
  fail "operator and bootstrap wills on RPC topics (e.g. with a forged cairn-principal) are not delivered" \
    "$(grep "will-alice-\|will-boot-" "$work/sub-rpcsvc")"
fi
if pub alice -t cairn/v1/rpc/registry/CreateWorkspace -m after-will &&
  poll 200 has_line rpcsvc "cairn/v1/rpc/registry/CreateWorkspace|cairn-principal:user:alice|after-will"; then
  pass "an ordinary request on the same RPC topic is delivered after a dropped will"
else
  fail "an ordinary request on the same RPC topic is delivered after a dropped will" "$(cat "$work/last-pub")"
fi
pub alice -r -t cairn/v1/rpc/registry/Kept -m retained-rpc || true
retained_pub=$(cat "$work/last-pub")
# shellcheck disable=SC2046
mosquitto_sub $(opts registry) -t cairn/v1/rpc/registry/Kept -C 1 -W 2 >"$work/sub-kept" 2>&1 || true
if [[ "$retained_pub" == *"Not authorized"* ]] && ! grep -q "retained-rpc" "$work/sub-kept" &&
  ! grep -q "retained-rpc" "$work/sub-rpcsvc"; then
  pass "RPC requests cannot be retained"
else
  fail "RPC requests cannot be retained" "PUBACK: $retained_pub" "$(cat "$work/sub-kept")"
fi
pub registry -r -n -t cairn/v1/rpc/registry/Kept || true

# -- RPC response topics -----------------------------------------------------------
# A request must name a response topic under cairn/v1/reply/{its client id}/,
# so a service never replies into another client's reply topics.
rt_denied() {  # rt_denied LABEL PAYLOAD PUB-ARGS...
  local label=$1 payload=$2 puback
  shift 2
  NO_AUTO_RT=1 pub alice -t cairn/v1/rpc/registry/X -m "$payload" "$@" || true
  puback=$(cat "$work/last-pub")
  marker rpcsvc registry cairn/v1/rpc/registry/Ping
  if ! grep -qF -- "$payload" "$work/sub-rpcsvc" && [[ "$puback" == *"Not authorized"* ]]; then
    pass "$label"
  else
    fail "$label" "PUBACK: $puback" "$(grep -F -- "$payload" "$work/sub-rpcsvc" || true)"
  fi
}
rt_denied "RPC request whose response topic is another client's reply prefix is refused" rt-foreign \
  -i ctl-test -D publish response-topic cairn/v1/reply/user:alice/someone-else/x
rt_denied "RPC request whose response topic is another principal's prefix (same client id) is refused" rt-otherprincipal \
  -i ctl-test -D publish response-topic cairn/v1/reply/user:bob/ctl-test/x
rt_denied "RPC request without a response topic is refused" rt-none -i ctl-test
rt_denied "RPC request whose response topic has a wildcard is refused" rt-wild \
  -i ctl-test -D publish response-topic 'cairn/v1/reply/user:alice/ctl-test/+'
rt_denied "RPC request whose response topic only extends the client id is refused" rt-longer \
  -i ctl-test -D publish response-topic cairn/v1/reply/user:alice/ctl-testx/x
rt_denied "RPC request from a client id with '/' (it owns no reply prefix) is refused" rt-slash \
  -i ctl/test -D publish response-topic cairn/v1/reply/user:alice/ctl/test/x
if pub alice -i ctl-test -t cairn/v1/rpc/registry/X -m rt-own -D publish response-topic cairn/v1/reply/user:alice/ctl-test/x &&
  poll 200 has_line rpcsvc "cairn/v1/rpc/registry/X|cairn-principal:user:alice|rt-own"; then
  pass "RPC request with a response topic under its own reply prefix is delivered"
else
  fail "RPC request with a response topic under its own reply prefix is delivered" "$(cat "$work/last-pub")"
fi
if grep -q "refused request from 'user:alice' (client ctl-test)" "$work/log/mosquitto.log" &&
  ! grep -q "rt-foreign\|rt-none" "$work/log/mosquitto.log"; then
  pass "refused requests are logged, without their payload"
else
  fail "refused requests are logged, without their payload"
fi
stop_sub rpcsvc

# -- nodes: reading ------------------------------------------------------------
start_sub n1 n1 -t 'cairn/v1/ws/demo/#' -t 'cairn/v1/reply/node:demo:n1/node:demo:n1/#'
ready n1 cairn/v1/ws/demo/nodes/n1/desired
pub registry -t cairn/v1/ws/demo/nodes/n1/desired -m n1-desired
pub registry -t cairn/v1/reply/node:demo:n1/node:demo:n1/1 -m n1-reply
if poll 200 has_line n1 "cairn/v1/ws/demo/nodes/n1/desired|cairn-principal:svc:registry|n1-desired" &&
  poll 200 has_line n1 "cairn/v1/reply/node:demo:n1/node:demo:n1/1|cairn-principal:svc:registry|n1-reply"; then
  pass "node reads its desired state and its replies, stamped by the service"
else
  fail "node reads its desired state and its replies, stamped by the service" "$(cat "$work/sub-n1")"
fi

# Denied subscriptions: the filter is refused, so nothing arrives through it.
# (One n2 connection at a time: both use n2's client id.)
start_sub n2wide n2 -t 'cairn/v1/ws/+/#' -t 'cairn/v1/ws/demo/nodes/n2/desired'
ready n2wide cairn/v1/ws/demo/nodes/n2/desired
pub registry -t cairn/v1/ws/other/events -m other-ws-event
marker n2wide registry cairn/v1/ws/demo/nodes/n2/desired
stop_sub n2wide
if ! grep -q "other-ws-event" "$work/sub-n2wide"; then
  pass "node cannot subscribe to cairn/v1/ws/+/#"
else
  fail "node cannot subscribe to cairn/v1/ws/+/#"
fi
start_sub n2other n2 -t 'cairn/v1/ws/other/#' -t '$share/g/cairn/v1/ws/other/#' -t 'cairn/#' \
  -t 'cairn/v1/reply/node:demo:n1/#' -t '$share/n2grp/cairn/v1/ws/demo/nodes/n2/desired'
ready n2other cairn/v1/ws/demo/nodes/n2/desired
pub registry -t cairn/v1/ws/other/events -m other-ws-event
pub registry -t cairn/v1/reply/node:demo:n1/2 -m reply-for-n1
pub registry -t cairn/v1/test/m -m outside-cairn-v1-ws
marker n2other registry cairn/v1/ws/demo/nodes/n2/desired
stop_sub n2other
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
start_sub bootreply bootstrap -t 'cairn/v1/reply/bootstrap/sub-bootreply/#' -t 'cairn/v1/reply/node:demo:n1/#' -t 'cairn/v1/ws/demo/#'
ready bootreply cairn/v1/reply/bootstrap/sub-bootreply/ready
pub registry -t cairn/v1/reply/node:demo:n1/node:demo:n1/3 -m bootstrap-snoop
pub registry -t cairn/v1/ws/demo/events -m bootstrap-ws
marker bootreply registry cairn/v1/reply/bootstrap/sub-bootreply/m
if ! grep -q "bootstrap-snoop\|bootstrap-ws" "$work/sub-bootreply"; then
  pass "bootstrap reads only its own reply topic"
else
  fail "bootstrap reads only its own reply topic" "$(cat "$work/sub-bootreply")"
fi
stop_sub bootreply   # bootstrap connections are counted (bootstrap_max_connections)

# -- section 3 findings ------------------------------------------------------------
# Each check below failed on the plugin before issue 5 (CAIRN_TEST_OLD_PLUGIN=1).

# live_pub NAME WHO ID TOPIC: a connection of WHO with client id ID that stays
# open; lines written to fd of live_send NAME are published on TOPIC.
declare -A live_fds live_pids
live_pub() {
  local name=$1 who=$2 id=$3 topic=$4 fd
  rm -f "$work/$name.fifo"
  mkfifo "$work/$name.fifo"
  # shellcheck disable=SC2046
  mosquitto_pub $(opts "$who") -i "$id" -q 1 -t "$topic" -l <"$work/$name.fifo" >"$work/live-$name" 2>&1 &
  live_pids[$name]=$!
  bg_pids+=($!)
  exec {fd}>"$work/$name.fifo"
  live_fds[$name]=$fd
}
live_send() { echo "$2" >&"${live_fds[$1]}"; }
# live_end NAME: closes its input, so it sends what is queued and exits.
live_end() {
  local fd=${live_fds[$1]} pid=${live_pids[$1]}
  exec {fd}>&-
  poll 100 eval "! kill -0 $pid 2>/dev/null" || kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Certificate logins are decided at connect: another node's (or another
# workspace's) certificate with n1's client id must not kick n1 off.
live_pub n1live n1 node:demo:n1 cairn/v1/ws/demo/nodes/n1/logs
live_send n1live cert-live-1
poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/logs|cairn-principal:node:demo:n1|cert-live-1" ||
  fail "n1 stays connected (setup)" "$(cat "$work/live-n1live")"
takeover_mark=$(log_mark)
# shellcheck disable=SC2046
mosquitto_pub $(opts n2) -i node:demo:n1 -t cairn/v1/ws/demo/nodes/n2/logs -m t1 -q 1 >"$work/last-pub" 2>&1 || true
n2_out=$(cat "$work/last-pub")
# shellcheck disable=SC2046
mosquitto_pub $(opts x1) -i node:demo:n1 -t cairn/v1/ws/other/nodes/x1/logs -m t2 -q 1 >"$work/last-pub" 2>&1 || true
x1_out=$(cat "$work/last-pub")
live_send n1live cert-live-2
if [[ "$n2_out" == *"Not authorized"* && "$x1_out" == *"Not authorized"* ]] &&
  poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/logs|cairn-principal:node:demo:n1|cert-live-2" &&
  ! log_since "$takeover_mark" "Client node:demo:n1 already connected"; then
  pass "another node's or workspace's certificate with a node's client id is refused at connect and does not kick the node"
else
  fail "another node's or workspace's certificate with a node's client id is refused at connect and does not kick the node" \
    "n2: $n2_out" "x1: $x1_out" "$(tail -n "+$((takeover_mark + 1))" "$work/log/mosquitto.log" | grep -i "node:demo:n1" | head -5)"
fi
live_end n1live

# Client-id takeover on the password listener: a live user session's client
# id cannot be taken by bootstrap (it would receive the user's replies).
start_sub ctl alice -t 'cairn/v1/reply/user:alice/sub-ctl/#'
ready ctl cairn/v1/reply/user:alice/sub-ctl/ready
steal_mark=$(log_mark)
mosquitto_sub -h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 -u bootstrap -P t \
  -i sub-ctl -t 'cairn/v1/reply/bootstrap/sub-ctl/#' -C 1 -W 3 >"$work/last-pub" 2>&1 || true
steal_out=$(cat "$work/last-pub")
pub registry -t cairn/v1/reply/user:alice/sub-ctl/token -m secret-token-reply
if [[ "$steal_out" == *"Not authorized"* ]] &&
  poll 200 has_line ctl "cairn/v1/reply/user:alice/sub-ctl/token|cairn-principal:svc:registry|secret-token-reply" &&
  ! log_since "$steal_mark" "Client sub-ctl already connected"; then
  pass "bootstrap cannot take over a live user's client id; the user keeps its replies"
else
  fail "bootstrap cannot take over a live user's client id; the user keeps its replies" "$steal_out" \
    "$(tail -n "+$((steal_mark + 1))" "$work/log/mosquitto.log" | grep sub-ctl | head -5)"
fi
stop_sub ctl

# Retained writes: only a node's own status may be retained; data streams
# are exactly one DNS-label level.
denied_write_args() {  # denied_write_args LABEL PUB-ARGS...
  local label=$1 payload puback
  shift
  payload="denied-$RANDOM$RANDOM"
  pub n1 "$@" -m "$payload" || true
  puback=$(cat "$work/last-pub")
  marker obs n1 cairn/v1/ws/demo/nodes/n1/logs
  if ! grep -qF -- "$payload" "$work/sub-obs" && [[ "$puback" == *"Not authorized"* ]]; then
    pass "$label"
  else
    fail "$label" "PUBACK: $puback" "$(grep -F -- "$payload" "$work/sub-obs" || true)"
  fi
}
denied_write_args "node cannot retain its health" -r -t cairn/v1/ws/demo/nodes/n1/health
denied_write_args "node cannot retain a data stream" -r -t cairn/v1/ws/demo/data/temps
denied_write_args "node cannot publish below data/{stream}" -t cairn/v1/ws/demo/data/temps/deep
denied_write_args "node cannot publish a data stream that is no DNS label" -t cairn/v1/ws/demo/data/Temps_1
pub n1 -r -t cairn/v1/ws/demo/nodes/n1/status -m n1-status-retained
if [[ "$(cat "$work/last-pub")" != *"Not authorized"* ]]; then pass "node may retain its own status"; else
  fail "node may retain its own status" "$(cat "$work/last-pub")"; fi

# Least privilege: a node reads its own desired state only, not other nodes'
# desired state, health or logs.
start_sub n2peek n2 -t 'cairn/v1/ws/demo/nodes/+/#' -t cairn/v1/ws/demo/nodes/n2/desired
ready n2peek cairn/v1/ws/demo/nodes/n2/desired
pub registry -t cairn/v1/ws/demo/nodes/n1/desired -m n1-desired-peek
pub n1 -t cairn/v1/ws/demo/nodes/n1/logs -m n1-logs-peek
pub registry -t cairn/v1/ws/demo/nodes/n1/health -m n1-health-peek
marker n2peek registry cairn/v1/ws/demo/nodes/n2/desired
stop_sub n2peek
if ! grep -q "n1-desired-peek\|n1-logs-peek\|n1-health-peek" "$work/sub-n2peek"; then
  pass "node reads neither another node's desired state nor its health or logs"
else
  fail "node reads neither another node's desired state nor its health or logs" "$(cat "$work/sub-n2peek")"
fi

# Health floods: one node publishing health as fast as it can is cut to its
# rate; another node's health still goes through, and the refusals are counted.
flood_mark=$(log_mark)
live_pub flood n1 node:demo:n1 cairn/v1/ws/demo/nodes/n1/health
for i in $(seq 1 40); do live_send flood "flood-$i"; done
live_end flood
pub n2 -t cairn/v1/ws/demo/nodes/n2/health -m n2-during-flood
flooded=$(grep -c "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|flood-" "$work/sub-obs" || true)
if poll 200 has_line obs "cairn/v1/ws/demo/nodes/n2/health|cairn-principal:node:demo:n2|n2-during-flood" &&
  ((flooded >= 1 && flooded <= 10)) && poll 100 log_since "$flood_mark" "refusals in the last .*health-rate="; then
  pass "a node flooding health is limited ($flooded of 40 delivered, counted as health-rate); other nodes are not starved"
else
  fail "a node flooding health is limited; other nodes are not starved" "delivered: $flooded" \
    "$(tail -n "+$((flood_mark + 1))" "$work/log/mosquitto.log" | grep cairn: | head -5)"
fi

# Users and integrators from the access file.
pw_bob=bob-secret
pw_graf=graf-secret
bob_hash=$(pbkdf2 "$pw_bob")
graf_hash=$(pbkdf2 "$pw_graf")
write_access "${access_base[@]}" "user bob $bob_hash" "role bob demo viewer" "cred demo grafana 0 $graf_hash"
poll 100 grep -q "loaded access snapshot .*: 2 users, 1 credentials" "$work/log/mosquitto.log" || true
graf_opts=(-h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 -u cred:demo:grafana -P "$pw_graf")
bob_opts=(-h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 -u user:bob -P "$pw_bob")
mosquitto_sub "${graf_opts[@]}" -i graf-1 -q 1 -F '%t|%P|%p' -t '#' >"$work/sub-graf" 2>"$work/sub-graf.err" &
graf_pid=$!
bg_pids+=("$graf_pid")
mosquitto_sub "${bob_opts[@]}" -i bob-1 -q 1 -F '%t|%P|%p' -t '#' >"$work/sub-bob" 2>"$work/sub-bob.err" &
bob_pid=$!
bg_pids+=("$bob_pid")
ready_both() {
  pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m "rb-$1" || true
  has_line graf "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|rb-$1" &&
    has_line bob "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|rb-$1"
}
i=0
until ready_both "$i" || ((i > 40)); do i=$((i + 1)); sleep 1.1; done
pub registry -t cairn/v1/ws/demo/nodes/n1/desired -m graf-desired
pub registry -t cairn/v1/ws/other/events -m graf-other-ws
pub registry -t cairn/v1/ws/demo/events -m demo-event
marker graf registry cairn/v1/ws/demo/events
if ((i <= 40)) && has_line graf "cairn/v1/ws/demo/events|cairn-principal:svc:registry|demo-event" &&
  ! grep -q "graf-desired\|graf-other-ws" "$work/sub-graf"; then
  pass "integrator subscribed to '#' reads its workspace's health and events only"
else
  fail "integrator subscribed to '#' reads its workspace's health and events only" "$(cat "$work/sub-graf.err")" \
    "$(grep "graf-" "$work/sub-graf" || true)"
fi
if has_line bob "cairn/v1/ws/demo/events|cairn-principal:svc:registry|demo-event" &&
  ! grep -q "graf-other-ws" "$work/sub-bob"; then
  pass "viewer reads only the workspace it has a role in"
else
  fail "viewer reads only the workspace it has a role in" "$(cat "$work/sub-bob.err")"
fi
payload="graf-write-$RANDOM"
mosquitto_pub "${graf_opts[@]}" -i graf-2 -q 1 -t cairn/v1/ws/demo/events -m "$payload" >"$work/last-pub" 2>&1 || true
graf_pub=$(cat "$work/last-pub")
marker obs registry cairn/v1/test/m
if [[ "$graf_pub" == *"Not authorized"* ]] && ! grep -q "$payload" "$work/sub-obs"; then
  pass "integrator writes nothing"
else
  fail "integrator writes nothing" "$graf_pub"
fi
removed_mark=$(log_mark)
write_access "${access_base[@]}" "user bob $bob_hash"
if poll 60 log_since "$removed_mark" "Client graf-1 .*disconnected\|Client graf-1 closed\|disconnecting client graf-1"; then
  pass "removing an integrator credential disconnects its live session within 3 s"
else
  fail "removing an integrator credential disconnects its live session within 3 s"
fi
pub registry -t cairn/v1/ws/demo/events -m bob-unbound
pub registry -t cairn/v1/ws/demo/nodes/n1/desired -m bob-marker-after
sleep 0.5
if ! grep -q "bob-unbound" "$work/sub-bob"; then
  pass "removing a viewer's binding stops its reads at once"
else
  fail "removing a viewer's binding stops its reads at once"
fi
kill "$graf_pid" "$bob_pid" 2>/dev/null || true
echo "garbage" >"$work/access.new" && mv "$work/access.new" "$work/access"
poll 60 grep -q "invalid access file" "$work/log/mosquitto.log" || true
refused "an invalid access file refuses user logins (fail closed)" -u user:alice -P "$pw_alice"
write_access "${access_base[@]}"

# Bootstrap abuse: at most 3 concurrent bootstrap connections in this test
# (bootstrap_max_connections=3), each dropped after 4 s.
boot_mark=$(log_mark)
for b in 1 2 3; do
  mosquitto_sub -h 127.0.0.1 -p "$auth_port" --cafile "$work/ca.crt" -V mqttv5 -u bootstrap -P t -i "boot-$b" \
    -t "cairn/v1/reply/bootstrap/boot-$b/#" >/dev/null 2>&1 &
  bg_pids+=($!)
done
for b in 1 2 3; do
  poll 200 log_since "$boot_mark" "New client connected .* as boot-$b " ||
    fail "bootstrap connection boot-$b (setup)" "$(tail -n "+$((boot_mark + 1))" "$work/log/mosquitto.log" | grep boot- | head -5)"
done
refused "a fourth concurrent bootstrap connection is refused" -u bootstrap -P t -i boot-4
if poll 200 log_since "$boot_mark" "disconnecting client boot-1: bootstrap session older than 4 s"; then
  pass "bootstrap sessions are dropped after bootstrap_max_session_seconds"
else
  fail "bootstrap sessions are dropped after bootstrap_max_session_seconds"
fi

# -- revocation ------------------------------------------------------------------
revoke_mark=$(log_mark)
if pub registry -t cairn/v1/sys/revoke -m node:demo:n1 &&
  poll 200 grep -q "revoked 'node:demo:n1'" "$work/log/mosquitto.log"; then
  pass "svc:registry revokes node:demo:n1"
else
  fail "svc:registry revokes node:demo:n1" "$(tail -5 "$work/log/mosquitto.log")"
fi
if poll 200 log_since "$revoke_mark" "Client node:demo:n1 .*disconnected\|Client node:demo:n1 closed"; then
  pass "revoked node is disconnected at once"
else
  fail "revoked node is disconnected at once" "$(grep node:demo:n1 "$work/log/mosquitto.log" | tail -3)"
fi
stop_sub n1   # so that it does not reconnect with n1's client id
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
again_mark=$(log_mark)
# shellcheck disable=SC2046
mosquitto_pub $(opts n1) -i node:demo:n1 -q 1 -t cairn/v1/ws/demo/nodes/n1/health -l \
  <"$work/n1.fifo" >"$work/pub-n1again" 2>&1 &
again_pid=$!
bg_pids+=("$again_pid")
exec 7>"$work/n1.fifo"
echo again-1 >&7 || true
if poll 200 log_since "$again_mark" "disconnecting revoked 'node:demo:n1'\|denied connect of 'node:demo:n1'.*revoked"; then
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
kill "$again_pid" 2>/dev/null || true
wait "$again_pid" 2>/dev/null || true

pub registry -t cairn/v1/sys/unrevoke -m node:demo:n1
if poll 200 grep -q "unrevoked 'node:demo:n1'" "$work/log/mosquitto.log" &&
  pub n1 -t cairn/v1/ws/demo/nodes/n1/health -m after-unrevoke &&
  poll 200 has_line obs "cairn/v1/ws/demo/nodes/n1/health|cairn-principal:node:demo:n1|after-unrevoke"; then
  pass "unrevoked node can publish again"
else
  fail "unrevoked node can publish again" "$(cat "$work/last-pub")"
fi

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
