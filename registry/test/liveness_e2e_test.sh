#!/usr/bin/env bash
# End-to-end: the registry's liveness sweep (liveness::NodeLiveness) on a
# real stack. A node that stops reporting (kill -STOP: connected, silent) is
# marked stale by the sweep after 3 of its 1 s intervals, before the broker
# publishes its will (1.5 x the 5 s keepalive) and marks it offline; when it
# resumes it is online again. The rule's cases (grace after a registry
# restart, bd_seq) are unit-tested in common/test/liveness_test.cc.
set -uo pipefail

source "${CAIRN_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/e2e.sh" liveness
export CAIRN_WORKSPACE=lv

events_has() { grep -q "\"state\":\"$1\"" "$STACK_DIR/events.json"; }
line_of() { grep -n "\"state\":\"$1\"" "$STACK_DIR/events.json" | head -1 | cut -d: -f1; }
stale_before_offline() { [[ -n "$(line_of stale)" && -n "$(line_of offline)" && $(line_of stale) -lt $(line_of offline) ]]; }

t_section "set-up"
check "workspace" cairnctl workspace create lv
check "bootstrap n" cairn-edge bootstrap --token "$(cairnctl token create --uses 1)" --name n \
  --data-dir "$STACK_DIR/nodes/n"
stack_start_edge n --health-interval 1s
eventually "n is online" 15 node_state_is n online
cairnctl -o json events >"$STACK_DIR/events.json" 2>"$STACK_DIR/events.err" &
EVENTS_PID=$!
eventually "the event follower is subscribed" 10 grep -q "following events" "$STACK_DIR/events.err"

t_section "a silent node"
kill -STOP "$(stack_pid node-n)"
eventually "the sweep publishes n stale" 15 events_has stale
eventually "the broker's will then marks n offline" 20 node_state_is n offline
check "stale came before offline" stale_before_offline

t_section "the node resumes"
kill -CONT "$(stack_pid node-n)"
eventually "n is online again" 20 node_state_is n online
kill "$EVENTS_PID" 2>/dev/null
t_finish
