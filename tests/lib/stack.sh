# shellcheck shell=bash
# stack.sh — start and stop a private Cairn stack on loopback: PostgreSQL,
# Mosquitto (with the Cairn plugin and TLS), cairn-registry, cairn-scheduler
# and edge nodes. Sourced by ./cairn-dev (up/down) and the integration and
# end-to-end tests, so that both run the very same stack.
#
# Inputs (set before calling stack_up):
#   STACK_DIR   state directory (created); everything lives below it
#   BIN_DIR     directory holding cairn-registry, cairn-scheduler, cairn-edge, cairnctl
#   PLUGIN      path of cairn_mosquitto_plugin.so
#   SRC_DIR     the source tree (for broker-config/)
# Outputs (after stack_up, also written to $STACK_DIR/env):
#   PG_PORT AUTH_PORT NODE_PORT DATABASE_URL and the CAIRN_* variables for cairnctl.
# Processes are recorded in $STACK_DIR/run/*.pid; logs go to $STACK_DIR/logs.

stack_log() { printf '[stack] %s\n' "$*" >&2; }
stack_die() { printf '[stack] error: %s\n' "$*" >&2; return 1; }

# A TCP port on 127.0.0.1 that nothing listens on, not handed out before in
# this shell.
STACK_USED_PORTS=" "
stack_free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [[ "$STACK_USED_PORTS" == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      STACK_USED_PORTS+="$p "
      echo "$p"
      return 0
    fi
  done
  stack_die "no free port found"
}

# wait_until TIMEOUT_S CMD...: polls CMD every 0.1 s until it succeeds.
wait_until() {
  local timeout=$1; shift
  local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s%N) > deadline )); then return 1; fi
    sleep 0.1
  done
}

stack_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stack_pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n "$d" ]] || { stack_die "PostgreSQL server binaries not found (apt-get install postgresql)"; return 1; }
  echo "$d"
}

# Runs a command as the postgres user when we are root (initdb refuses root).
stack_as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

stack_start_pg() {
  local pgbin; pgbin=$(stack_pg_bin) || return 1
  PG_PORT=${PG_PORT:-$(stack_free_port)}
  local data="$STACK_DIR/pg/data" sock="$STACK_DIR/pg/sock" pwfile="$STACK_DIR/secrets/pg-postgres"
  mkdir -p "$STACK_DIR/pg" "$sock" "$STACK_DIR/secrets"
  chmod 700 "$STACK_DIR/secrets"
  # The cluster's superuser has a password (scram-sha-256 for every
  # connection, socket included); the services find it in DATABASE_URL.
  if [[ ! -s "$pwfile" ]]; then
    (umask 077; stack_new_secret >"$pwfile")
  fi
  PGPASSWORD=$(cat "$pwfile")
  export PGPASSWORD
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres:postgres "$STACK_DIR/pg"; fi
  if [[ ! -f "$data/PG_VERSION" ]]; then
    local initpw="$STACK_DIR/pg/initdb.pw"
    cp "$pwfile" "$initpw"
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$initpw"; fi
    stack_as_pg "$pgbin/initdb" -D "$data" -A scram-sha-256 --pwfile="$initpw" -U postgres --no-sync \
      >"$STACK_DIR/logs/initdb.log" 2>&1
    local rc=$?
    rm -f "$initpw"
    ((rc == 0)) || { cat "$STACK_DIR/logs/initdb.log" >&2; stack_die "initdb failed"; return 1; }
  fi
  stack_as_pg "$pgbin/pg_ctl" -D "$data" -w -t 30 -l "$STACK_DIR/pg/postgres.log" \
    -o "-p $PG_PORT -k $sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { tail -20 "$STACK_DIR/pg/postgres.log" >&2; stack_die "PostgreSQL did not start"; return 1; }
  "$pgbin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qAtc \
    "SELECT 1 FROM pg_database WHERE datname='cairn'" | grep -q 1 \
    || "$pgbin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres cairn
  DATABASE_URL="postgresql://postgres:$PGPASSWORD@127.0.0.1:$PG_PORT/cairn"
}

# A random password; its SHA-256 goes to the broker's credentials file.
stack_new_secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=\n'; }
stack_sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

stack_setup_pki() {
  mkdir -p "$STACK_DIR/pki" "$STACK_DIR/broker" "$STACK_DIR/secrets"
  chmod 700 "$STACK_DIR/pki" "$STACK_DIR/secrets" "$STACK_DIR/broker"
  # A key from an older stack may still be 0640: keys are 0600 now.
  [[ -f "$STACK_DIR/broker/broker.key" ]] && chmod 600 "$STACK_DIR/broker/broker.key"
  "$BIN_DIR/cairn-registry" pki-init --pki-dir "$STACK_DIR/pki" --out-dir "$STACK_DIR/broker" \
    --san localhost --san 127.0.0.1 >/dev/null || { stack_die "pki-init failed"; return 1; }
  # Service secrets: random, SHA-256 lines in the broker's static credentials
  # file. People (user:*) and integrator credentials come from the registry's
  # access snapshot ($STACK_DIR/broker/access); the first admin's password is
  # written by the registry to $STACK_DIR/secrets/user-admin on its first start.
  local who
  if [[ ! -f "$STACK_DIR/broker/credentials" ]]; then
    : >"$STACK_DIR/broker/credentials.new"
    for who in svc:registry svc:scheduler; do
      local secret; secret=$(stack_new_secret)
      (umask 077; printf '%s' "$secret" >"$STACK_DIR/secrets/${who//:/-}")
      echo "$who $(stack_sha256 "$secret")" >>"$STACK_DIR/broker/credentials.new"
    done
    mv "$STACK_DIR/broker/credentials.new" "$STACK_DIR/broker/credentials"
  fi
}

stack_start_broker() {
  AUTH_PORT=${AUTH_PORT:-$(stack_free_port)}
  NODE_PORT=${NODE_PORT:-$(stack_free_port)}
  local b="$STACK_DIR/broker"
  mkdir -p "$b/data"
  CAIRN_BROKER_DATA_DIR="$b/data" CAIRN_BROKER_BIND=127.0.0.1 \
  CAIRN_BROKER_AUTH_PORT=$AUTH_PORT CAIRN_BROKER_NODE_PORT=$NODE_PORT \
  CAIRN_BROKER_CA_FILE="$b/ca.crt" CAIRN_BROKER_CERT_FILE="$b/broker.crt" \
  CAIRN_BROKER_KEY_FILE="$b/broker.key" CAIRN_BROKER_PLUGIN="$b/cairn_mosquitto_plugin.so" \
  CAIRN_BROKER_CREDENTIALS_FILE="$b/credentials" CAIRN_BROKER_ACCESS_FILE="$b/access" \
  CAIRN_BROKER_LOG_FILE="$b/mosquitto.log" \
    bash "$SRC_DIR/broker-config/render-conf.sh" "$b/mosquitto.conf" || return 1
  # The broker drops to user mosquitto: give it its own copy of the plugin and
  # ownership of its directory.
  cp "$PLUGIN" "$b/cairn_mosquitto_plugin.so"
  if [[ $(id -u) -eq 0 ]] && id mosquitto >/dev/null 2>&1; then chown -R mosquitto: "$b"; fi
  local mosq; mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  LD_PRELOAD="${CAIRN_BROKER_PRELOAD:-${LD_PRELOAD:-}}" ASAN_OPTIONS="${CAIRN_BROKER_ASAN_OPTIONS:-${ASAN_OPTIONS:-}}" "$mosq" -c "$b/mosquitto.conf" >>"$STACK_DIR/logs/mosquitto.out" 2>&1 &
  echo $! >"$STACK_DIR/run/mosquitto.pid"
  wait_until 15 stack_port_open "$AUTH_PORT" && wait_until 5 stack_port_open "$NODE_PORT" \
    || { tail -20 "$b/mosquitto.log" "$STACK_DIR/logs/mosquitto.out" >&2; stack_die "broker did not start"; return 1; }
}

stack_write_service_configs() {
  (umask 077; : >"$STACK_DIR/registry.yaml"; : >"$STACK_DIR/scheduler.yaml")
  cat >"$STACK_DIR/registry.yaml" <<YAML
# cairn-registry configuration written by tests/lib/stack.sh
database-url: "$DATABASE_URL"
broker-url: "ssl://localhost:$AUTH_PORT"
broker-ca-file: "$STACK_DIR/broker/ca.crt"
broker-password-file: "$STACK_DIR/secrets/svc-registry"
pki-dir: "$STACK_DIR/pki"
broker-access-file: "$STACK_DIR/broker/access"
admin-password-file: "$STACK_DIR/secrets/user-admin"
bootstrap-broker-url: "ssl://localhost:$AUTH_PORT"
node-broker-url: "ssl://localhost:$NODE_PORT"
log-file: "$STACK_DIR/logs/registry.log"
YAML
  cat >"$STACK_DIR/scheduler.yaml" <<YAML
# cairn-scheduler configuration written by tests/lib/stack.sh
database-url: "$DATABASE_URL"
broker-url: "ssl://localhost:$AUTH_PORT"
broker-ca-file: "$STACK_DIR/broker/ca.crt"
broker-password-file: "$STACK_DIR/secrets/svc-scheduler"
log-file: "$STACK_DIR/logs/scheduler.log"
YAML
}

# stack_start_service NAME: starts cairn-NAME and waits for its ready line.
stack_start_service() {
  local name=$1
  # Keep one previous log; the ready line below must come from this start.
  [[ -f "$STACK_DIR/logs/$name.log" ]] && mv -f "$STACK_DIR/logs/$name.log" "$STACK_DIR/logs/$name.log.1"
  "$BIN_DIR/cairn-$name" --config "$STACK_DIR/$name.yaml" >>"$STACK_DIR/logs/$name.out" 2>&1 &
  echo $! >"$STACK_DIR/run/$name.pid"
  wait_until 30 grep -q "cairn-$name ready" "$STACK_DIR/logs/$name.log" \
    || { tail -20 "$STACK_DIR/logs/$name.out" "$STACK_DIR/logs/$name.log" >&2 2>/dev/null; stack_die "cairn-$name did not become ready"; return 1; }
}

stack_write_env() {
  cat >"$STACK_DIR/env" <<ENV
export PATH="$BIN_DIR:\$PATH"
export CAIRN_BROKER_URL="ssl://localhost:$AUTH_PORT"
export CAIRN_CA_FILE="$STACK_DIR/broker/ca.crt"
export CAIRN_USER="admin"
export CAIRN_PASSWORD_FILE="$STACK_DIR/secrets/user-admin"
export CAIRN_WORKSPACE="\${CAIRN_WORKSPACE:-demo}"
export CAIRN_DATABASE_URL="$DATABASE_URL"
ENV
}

# Brings up PostgreSQL, the broker, the registry and the scheduler.
stack_up() {
  mkdir -p "$STACK_DIR/logs" "$STACK_DIR/run" "$STACK_DIR/nodes"
  chmod 755 "$STACK_DIR"
  stack_start_pg || return 1
  stack_setup_pki || return 1
  stack_start_broker || return 1
  stack_write_service_configs
  stack_start_service registry || return 1
  stack_start_service scheduler || return 1
  stack_write_env
  # shellcheck disable=SC1091
  source "$STACK_DIR/env"
}

# stack_start_edge NAME [extra cairn-edge run flags...]: runs an already
# bootstrapped node from $STACK_DIR/nodes/NAME.
stack_start_edge() {
  local name=$1; shift
  "$BIN_DIR/cairn-edge" run --data-dir "$STACK_DIR/nodes/$name" --log-file "$STACK_DIR/logs/node-$name.log" "$@" \
    >>"$STACK_DIR/logs/node-$name.out" 2>&1 &
  echo $! >"$STACK_DIR/run/node-$name.pid"
}

stack_pid() { cat "$STACK_DIR/run/$1.pid" 2>/dev/null; }

# stack_stop_proc NAME [SIGNAL]
stack_stop_proc() {
  local pid; pid=$(stack_pid "$1") || return 0
  [[ -n "$pid" ]] || return 0
  kill "-${2:-TERM}" "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$STACK_DIR/run/$1.pid"
}

stack_down() {
  local f
  for f in "$STACK_DIR"/run/node-*.pid; do [[ -e "$f" ]] && stack_stop_proc "$(basename "$f" .pid)"; done
  stack_stop_proc scheduler
  stack_stop_proc registry
  stack_stop_proc mosquitto
  if [[ -f "$STACK_DIR/pg/data/postmaster.pid" ]]; then
    local pgbin; pgbin=$(stack_pg_bin) && stack_as_pg "$pgbin/pg_ctl" -D "$STACK_DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
