#!/usr/bin/env bash
# edge-footprint.sh — the measurements behind docs/design/edge-footprint.md.
# Starts a throw-away stack (tests/lib/stack.sh: PostgreSQL, Mosquitto,
# registry, scheduler), bootstraps one node and prints:
#   the stripped size of cairn-edge and the shared libraries it needs;
#   RSS/PSS idle (smaps_rollup), the mappings that hold most of it;
#   CPU idle over IDLE_SECONDS (default 60; /proc stat ticks and schedstat ns);
#   RSS and CPU with three generate -> file pipelines at 1,000 records/s each.
# Usage: docs/design/edge-footprint.sh [BUILD_DIR]   (default: build)
# Keeps pmap/smaps snapshots in $OUT_DIR (default: a temp dir, printed).
set -uo pipefail
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$SRC_DIR/build}
BIN_DIR=$BUILD/bin
PLUGIN=${PLUGIN:-$BUILD/lib/cairn_mosquitto_plugin.so}
IDLE_SECONDS=${IDLE_SECONDS:-60}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/cairn-footprint-out.XXXXXX)}
STACK_DIR=$(mktemp -d /tmp/cairn-footprint.XXXXXX)
export SRC_DIR BIN_DIR PLUGIN STACK_DIR
source "$SRC_DIR/tests/lib/stack.sh"
trap 'stack_down; rm -rf "$STACK_DIR"' EXIT

strip -o "$OUT_DIR/cairn-edge.stripped" "$BIN_DIR/cairn-edge"
echo "stripped binary: $(stat -c %s "$OUT_DIR/cairn-edge.stripped") bytes"
echo "shared libraries: $(ldd "$BIN_DIR/cairn-edge" | awk '/=>/ {print $1}' | tr '\n' ' ')"

stack_up >/dev/null 2>&1 || { echo "the stack did not start (logs: $STACK_DIR/logs)"; trap - EXIT; exit 1; }
export CAIRN_WORKSPACE=fp
cairnctl workspace create fp >/dev/null
"$BIN_DIR/cairn-edge" bootstrap --token "$(cairnctl token create --uses 1)" --name fp1 --label bench=fp \
  --data-dir "$STACK_DIR/nodes/fp1" >/dev/null 2>&1
stack_start_edge fp1
PID=$(stack_pid node-fp1)
wait_until 20 bash -c "cairnctl -o json node get fp1 | jq -e '.state == \"online\"'" \
  || { echo "the node did not come online"; exit 1; }
sleep 15  # past start-up: first health report, desired state applied

rollup() { awk '/^(Rss|Pss|Private_Clean|Private_Dirty|Shared_Clean|Anonymous):/ {printf "%s %s kB  ", $1, $2}' \
  "/proc/$PID/smaps_rollup"; echo "threads $(ls "/proc/$PID/task" | wc -l)"; }
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
run_ns() { cat "/proc/$PID/task/"*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
cpu() { # SECONDS: CPU % of one core over that long
  local t0 n0 t1 n1; t0=$(ticks); n0=$(run_ns); sleep "$1"; t1=$(ticks); n1=$(run_ns)
  awk -v t=$((t1 - t0)) -v n=$((n1 - n0)) -v s="$1" \
    'BEGIN {printf "%.3f %% (%d ticks; schedstat %.1f ms)\n", n / s / 1e7, t, n / 1e6}'
}
top_mappings() { # by RSS, summed per file
  pmap -x "$PID" | awk 'NR > 2 && $3 > 0 && $1 != "total" {k = ($NF == "]") ? "[anon]" : $NF; m[k] += $3} END {for (k in m) printf "%8d kB %s\n", m[k], k}' \
    | sort -rn | head -8
}

echo "idle: $(rollup)"
top_mappings
pmap -x "$PID" >"$OUT_DIR/idle.pmap"; cp "/proc/$PID/smaps" "$OUT_DIR/idle.smaps"
echo "idle CPU over ${IDLE_SECONDS}s: $(cpu "$IDLE_SECONDS")"

for i in 1 2 3; do
  cat >"$STACK_DIR/gen$i.yaml" <<YAML
name: gen$i
selector: {bench: fp}
pipeline:
  input: {generate: {rate: 1000, message: '{"level":"info","msg":"hello from the footprint benchmark","n":42}'}}
  output: {file: {path: out/gen$i.log}}
YAML
  cairnctl pipeline apply -f "$STACK_DIR/gen$i.yaml" >/dev/null
done
wait_until 20 bash -c "cairnctl -o json node get fp1 | jq -e '[.health.pipelines[]? | select(.state == \"RUNNING\")] | length == 3'" \
  || echo "warning: the three pipelines are not all running"
sleep 20
count() { cat "$STACK_DIR/nodes/fp1/out/"gen*.log 2>/dev/null | wc -l; }
c0=$(count)
echo "three pipelines, CPU over 20s: $(cpu 20)"
echo "three pipelines: $(( ($(count) - c0) / 20 )) records/s written"
echo "three pipelines: $(rollup)"
pmap -x "$PID" >"$OUT_DIR/load.pmap"; cp "/proc/$PID/smaps" "$OUT_DIR/load.smaps"
echo "snapshots in $OUT_DIR"
