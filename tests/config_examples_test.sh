#!/usr/bin/env bash
# The commented example configs in the repo load without config errors: each
# binary gets as far as using the settings (and then fails on the network or
# the database, which these examples point at hosts that do not exist).
set -uo pipefail
SRC_DIR=${CAIRN_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BIN_DIR=${CAIRN_BIN_DIR:-$SRC_DIR/build/bin}
source "$SRC_DIR/tests/lib/assert.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

config_error() { grep -Eq "unknown key|expected|invalid|duplicate" "$1"; }

"$BIN_DIR/cairn-registry" migrate --config "$SRC_DIR/registry/registry.example.yaml" --database-wait 1s \
  --database-url "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1" >"$tmp/r" 2>&1
check "registry.example.yaml loads" bash -c "! grep -Eq 'unknown key|expected|invalid duration|duplicate' '$tmp/r' && grep -q 'PostgreSQL' '$tmp/r'"

CAIRN_SCHEDULER_DATABASE_URL="postgresql://nobody@127.0.0.1:1/none?connect_timeout=1" \
  timeout 60 "$BIN_DIR/cairn-scheduler" --config "$SRC_DIR/scheduler/scheduler.example.yaml" --database-wait 1s >"$tmp/s" 2>&1
check "scheduler.example.yaml loads" bash -c "! grep -Eq 'unknown key|expected|invalid duration|duplicate' '$tmp/s' && grep -q 'PostgreSQL' '$tmp/s'"

"$BIN_DIR/cairn-edge" run --config "$SRC_DIR/edge/edge.example.yaml" --data-dir "$tmp/edge" >"$tmp/e" 2>&1
check "edge.example.yaml loads" bash -c "! grep -Eq 'unknown key|expected|invalid duration|duplicate' '$tmp/e' && grep -q 'no identity' '$tmp/e'"

printf 'database-url: x\nlisten: 1\n' >"$tmp/bad.yaml"
"$BIN_DIR/cairn-registry" migrate --config "$tmp/bad.yaml" >"$tmp/b" 2>&1
check "an unknown key is rejected with its name" grep -q 'unknown key "listen"' "$tmp/b"

# Pipeline files: docs/examples/*.yaml and every ```yaml block of
# docs/pipelines.md pass the one validator through the CLI users run
# (`cairn-edge run --pipeline FILE --check`).
for f in "$SRC_DIR"/docs/examples/*.yaml; do
  check "docs/examples/$(basename "$f") validates" "$BIN_DIR/cairn-edge" run --pipeline "$f" --check
done
mkdir -p "$tmp/md"
awk -v dir="$tmp/md" '/^```yaml$/ {n++; out=sprintf("%s/%02d.yaml", dir, n); inside=1; next}
                      /^```/ {inside=0; next}
                      inside {print > out}' "$SRC_DIR/docs/pipelines.md"
n=0
for f in "$tmp"/md/*.yaml; do
  n=$((n + 1))
  check "docs/pipelines.md example $(basename "$f" .yaml) ($(sed -n 's/^name: \([^ #]*\).*/\1/p' "$f")) validates" \
    "$BIN_DIR/cairn-edge" run --pipeline "$f" --check
done
check "docs/pipelines.md has examples (found $n)" test "$n" -ge 15
printf 'name: bad\npipeline:\n  input: generate\n  processors: [{filter: {regex: "(?=x)"}}]\n  output: stdout\n' >"$tmp/bad-pipeline.yaml"
check_fails "a bad pipeline file is refused with its field path" \
  'pipeline.processors\[0\].filter.regex: invalid regex' "$BIN_DIR/cairn-edge" run --pipeline "$tmp/bad-pipeline.yaml" --check

t_finish
