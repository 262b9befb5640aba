#!/usr/bin/env bash
# The quick run of cairn-bench-edge (bench/edge_bench.sh --quick: a real node
# against a throw-away stack, rsyslog beside it) prints every figure, each with
# a number, and loses no record on the way to the broker. No timing
# assertions: the benchmark prints figures, docs/benchmarks.md judges them.
set -uo pipefail
SRC_DIR=${CAIRN_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
source "$SRC_DIR/tests/lib/assert.sh"
out=$(mktemp "${TMPDIR:-/tmp}/cairn-bench-smoke.XXXXXX")
trap 'rm -f "$out" "$out.err"' EXIT

bash "$SRC_DIR/bench/edge_bench.sh" --quick >"$out" 2>"$out.err"
rc=$?
cat "$out"
((rc == 0)) || tail -20 "$out.err"

t_section "cairn-bench-edge --quick"
check "it exits 0 (every phase measured)" test "$rc" -eq 0
check "it names the machine" grep -Eq '^machine: +.+, [0-9]+ cores, kernel ' "$out"
check "it says it is the quick run" grep -q '(quick run)' "$out"
for f in "binary stripped" "shared libraries" \
  "idle CPU" "idle RSS" "idle PSS" "idle private" \
  "load CPU" "load RSS" "load PSS" "load delivered" \
  "backlog drain" "backlog reconnect" \
  "mqtt throughput" "mqtt CPU per record" "mqtt RSS peak" "mqtt records lost" \
  "file throughput" "file CPU per record" "file RSS peak" \
  "rsyslog throughput" "rsyslog CPU per record" "rsyslog RSS peak" \
  "rsyslog DA-queue throughput" "rsyslog DA-queue CPU per record" "rsyslog DA-queue RSS peak"; do
  check "it prints $f with a number" grep -Eq "^$f +[0-9][0-9.]* " "$out"
done
check "the file -> filter -> mqtt run loses no record" grep -Eq '^mqtt records lost +0 ' "$out"
t_finish
