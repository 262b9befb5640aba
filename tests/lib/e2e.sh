# shellcheck shell=bash
# e2e.sh — common start of the end-to-end scripts: locate the build, make a
# private state dir, load stack.sh and assert.sh, tear everything down on
# exit (CAIRN_TEST_KEEP=1 keeps the state dir), and start the stack.
#   source "$(dirname "$0")/../lib/e2e.sh" NAME
SRC_DIR=${CAIRN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BIN_DIR=${CAIRN_BIN_DIR:-$SRC_DIR/build/bin}
PLUGIN=${CAIRN_PLUGIN:-$SRC_DIR/build/lib/cairn_mosquitto_plugin.so}
STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-${1:-e2e}.XXXXXX")
export SRC_DIR BIN_DIR PLUGIN STACK_DIR
source "$SRC_DIR/tests/lib/stack.sh"
source "$SRC_DIR/tests/lib/assert.sh"

e2e_cleanup() {
  stack_down
  if [[ -n "${CAIRN_TEST_KEEP:-}" ]]; then echo "kept $STACK_DIR"; else rm -rf "$STACK_DIR"; fi
}
trap e2e_cleanup EXIT

stack_up || { echo "stack did not start"; exit 1; }

# Node and file helpers (cairnctl must point at this stack: stack_up did it).
node_json() { cairnctl -o json node get "$1"; }
node_field() { node_json "$1" | jq -r "$2"; }
node_state_is() { [[ "$(node_field "$1" .state)" == "$2" ]]; }
node_runs() { node_json "$1" | jq -e --arg p "$2" '.health.pipelines // [] | map(select(.name == $p and .state == "RUNNING")) | length == 1' >/dev/null; }
node_lacks() { node_json "$1" | jq -e --arg p "$2" '(.health.pipelines // []) | map(select(.name == $p)) | length == 0' >/dev/null; }
lines() { [[ -f "$1" ]] && wc -l <"$1" || echo 0; }
more_lines() { [[ $(lines "$1") -gt $2 ]]; }
# grows FILE: the file gains a line within 10 s.
grows() { local before; before=$(lines "$1"); wait_until 10 more_lines "$1" "$before"; }
