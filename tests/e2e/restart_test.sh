#!/usr/bin/env bash
# End-to-end: the control plane survives restarts. The scheduler, the
# registry and the broker are restarted one after the other (the broker with
# its persistence wiped, so every retained message is gone); the nodes keep
# running their pipelines, reconnect, and the scheduler rebuilds the retained
# desired state and pipeline configs from PostgreSQL.
set -uo pipefail

source "$(dirname "$0")/../lib/e2e.sh" restart
export CAIRN_WORKSPACE=rs

retained_desired() { # NODE: the broker holds a retained desired state for it
  mosquitto_sub -V mqttv5 -h localhost -p "$AUTH_PORT" --cafile "$CAIRN_CA_FILE" -u svc:registry \
    -P "$(cat "$STACK_DIR/secrets/svc-registry")" -t "cairn/v1/ws/rs/nodes/$1/desired" --retained-only -C 1 -W 2 >/dev/null
}
all_running() { cairnctl pipeline status ticks | grep -q 'targeted 2, applied 2, running 2, failed 0, pending 0'; }

t_section "set-up"
check "workspace" cairnctl workspace create rs
for n in a b; do
  check "bootstrap $n" cairn-edge bootstrap --token "$(cairnctl token create --uses 1)" --name $n \
    --data-dir "$STACK_DIR/nodes/$n" --label role=worker
  stack_start_edge $n --health-interval 1s
done
cat >"$STACK_DIR/ticks.yaml" <<YAML
name: ticks
workspace: rs
selector: "role=worker"
pipeline:
  input: {generate: {interval: 100ms, message: tick}}
  output: {file: {path: out/ticks.log}}
YAML
check "apply" cairnctl pipeline apply -f "$STACK_DIR/ticks.yaml"
eventually "both nodes run it" 15 all_running

t_section "scheduler restart"
stack_stop_proc scheduler
check "nodes keep running without the scheduler" grows "$STACK_DIR/nodes/a/out/ticks.log"
check "scheduler starts again" stack_start_service scheduler
sed -i 's/message: tick/message: tock/' "$STACK_DIR/ticks.yaml"
check "a change applies after the restart" cairnctl pipeline apply -f "$STACK_DIR/ticks.yaml"
eventually "node a runs version 2" 15 bash -c "cairnctl -o json node get a | jq -e '.health.pipelines[] | select(.name==\"ticks\" and .version==2 and .state==\"RUNNING\")'"
eventually "node a writes the new record" 10 grep -q tock "$STACK_DIR/nodes/a/out/ticks.log"

t_section "registry restart"
stack_stop_proc registry
check "registry starts again" stack_start_service registry
SEQ=$(node_json b | jq -r .health.seq)
eventually "health reaches the restarted registry" 10 bash -c "[[ \$(cairnctl -o json node get b | jq -r .health.seq) -gt $SEQ ]]"
check "the nodes are still online" bash -c "cairnctl node list | grep -Eq '^a +online' && cairnctl node list | grep -Eq '^b +online'"

t_section "broker restart without its persistence"
stack_stop_proc mosquitto
rm -f "$STACK_DIR/broker/data/mosquitto.db"
check "nodes keep running while the broker is down" grows "$STACK_DIR/nodes/b/out/ticks.log"
stack_stop_proc node-a
stack_start_edge a --health-interval 1s
check "a node restarted without a broker runs its pipeline from its cache" grows "$STACK_DIR/nodes/a/out/ticks.log"
check "... the cached version 2" bash -c "tail -n 1 '$STACK_DIR/nodes/a/out/ticks.log' | grep -q tock"
check "broker starts again on the same ports" stack_start_broker
eventually "the scheduler rebuilt a's retained desired state" 30 retained_desired a
eventually "the scheduler rebuilt b's retained desired state" 30 retained_desired b
eventually "node a is online again" 30 node_state_is a online
eventually "node b is online again" 30 node_state_is b online
eventually "both still run the pipeline, version 2" 20 all_running
check "and keep writing" grows "$STACK_DIR/nodes/b/out/ticks.log"

t_finish
