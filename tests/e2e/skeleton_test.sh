#!/usr/bin/env bash
# End-to-end: token -> bootstrap -> health -> selector deploy, on a real
# PostgreSQL and Mosquitto with the registry, the scheduler and three edge
# nodes (health interval 1 s). See issue 2 for what must hold.
set -uo pipefail

source "$(dirname "$0")/../lib/e2e.sh" e2e
WS=e2e
export CAIRN_WORKSPACE=$WS

health_seq() { node_field "$1" .health.seq; }
seq_above() { [[ $(health_seq "$1") -gt $2 ]]; }
# Waits for two more health reports from NODE: the pipeline runtime has had
# time to act on whatever it reported before.
two_reports() { local s; s=$(health_seq "$1"); wait_until 10 seq_above "$1" $((s + 1)); }
bootstrap() { # NAME TOKEN LABEL...
  local name=$1 token=$2; shift 2
  local args=(); for l in "$@"; do args+=(--label "$l"); done
  cairn-edge bootstrap --token "$token" --name "$name" --data-dir "$STACK_DIR/nodes/$name" "${args[@]}"
}

t_section "workspaces"
check "workspace create" cairnctl workspace create $WS --description "end to end"
check_fails "a second create is refused" "already exists" cairnctl workspace create $WS
check_fails "an invalid name is refused" "workspace" cairnctl workspace create Bad_Name
check_fails "a wrong password is refused as such" "refused the credentials" \
  bash -c "echo wrong > '$STACK_DIR/badpw'; cairnctl --password-file '$STACK_DIR/badpw' workspace list"
check "workspace list shows it" bash -c "cairnctl workspace list | grep -q '^$WS '"

t_section "bootstrap tokens"
ONCE=$(cairnctl token create --uses 1 --label tier=edge)
check "token create prints only the token" grep -Eq '^cairn1\.[A-Za-z0-9_-]+$' <<<"$ONCE"
check "first use of a --uses 1 token bootstraps" bootstrap n1 "$ONCE" env=production role=log-processor
check_fails "second use of a --uses 1 token is refused" "used up" bootstrap n1b "$ONCE"
check "the refused node left no identity behind" test ! -e "$STACK_DIR/nodes/n1b/identity.yaml"
check "private key is 0600" test "$(stat -c %a "$STACK_DIR/nodes/n1/node.key")" = 600
check "token preset labels reach the node" bash -c "cairnctl -o json node get n1 | jq -e '.labels.tier == \"edge\" and .labels.env == \"production\"'"

SHORT=$(cairnctl token create --ttl 1s)
eventually "a 1s token shows as expired" 5 bash -c "cairnctl token list | grep -q expired"
check_fails "an expired token is refused" "expired" bootstrap n9 "$SHORT"
REVOKED=$(cairnctl token create)
RID=$(cairnctl -o json token list | jq -r '.tokens | sort_by(.created_ms) | last | .id')
check "token revoke" cairnctl token revoke "$RID"
check_fails "a revoked token is refused" "revoked" bootstrap n9 "$REVOKED"
check_fails "a damaged token is refused" "damaged|not a Cairn" bootstrap n9 "cairn1.AAAA"

RACE=$(cairnctl token create --uses 1)
( bootstrap r1 "$RACE" >"$STACK_DIR/race1.out" 2>&1; echo $? >"$STACK_DIR/race1.rc" ) & RACE1=$!
( bootstrap r2 "$RACE" >"$STACK_DIR/race2.out" 2>&1; echo $? >"$STACK_DIR/race2.rc" ) & RACE2=$!
wait "$RACE1" "$RACE2"
check "two concurrent uses of a --uses 1 token: exactly one succeeds" \
  test "$(cat "$STACK_DIR/race1.rc" "$STACK_DIR/race2.rc" | sort | tr -d '\n')" = "01"

MULTI=$(cairnctl token create --uses 1)
check "bootstrap n2" bootstrap n2 "$MULTI" env=production role=log-processor region=eu-west-1
check_fails "a taken node name is refused" "already exists in workspace" \
  cairn-edge bootstrap --token "$(cairnctl token create)" --name n2 --data-dir "$STACK_DIR/nodes/n2-again"

t_section "health"
for n in n1 n2; do stack_start_edge $n --health-interval 1s; done
# n3 uses the container form: `run` bootstraps first when the data dir is empty.
CAIRN_EDGE_BOOTSTRAP_TOKEN=$(cairnctl token create --uses 1) \
  stack_start_edge n3 --health-interval 1s --name n3 --label env=staging --label role=gateway
for n in n1 n2 n3; do eventually "$n is online" 10 node_state_is $n online; done
check_fails "a second cairn-edge on n1's data dir is refused, naming the first one's pid" \
  "data dir .* is in use by another cairn-edge \\(pid $(stack_pid node-n1)\\)" \
  "$BIN_DIR/cairn-edge" run --data-dir "$STACK_DIR/nodes/n1"
check "and n1 stays online" node_state_is n1 online
SEQ=$(node_field n1 .health.seq)
eventually "a new health report reaches the registry within two intervals" 2 \
  bash -c "[[ \$(cairnctl -o json node get n1 | jq -r .health.seq) -gt $SEQ ]]"
H=$(node_json n1)
check "cpu is a percentage" jq -e '(.health.cpu_percent // 0) >= 0 and (.health.cpu_percent // 0) <= 100' <<<"$H"
check "memory figures are plausible" jq -e '(.health.memory_total_bytes|tonumber) > 1000000 and (.health.memory_used_bytes|tonumber) > 0 and (.health.memory_used_bytes|tonumber) <= (.health.memory_total_bytes|tonumber)' <<<"$H"
check "disk figures are plausible" jq -e '(.health.disk_total_bytes|tonumber) > 0 and (.health.disk_used_bytes|tonumber) <= (.health.disk_total_bytes|tonumber)' <<<"$H"
check "node list -l selects by label" bash -c "[[ \$(cairnctl -o json node list -l 'env=production,role in (log-processor)' | jq -r '[.nodes[].name] | join(\",\")') == n1,n2 ]]"
check_fails "an invalid selector is refused" "selector" cairnctl node list -l 'env in (a'

t_section "selector deploy"
cat >"$STACK_DIR/app-errors.yaml" <<YAML
name: app-errors
workspace: $WS
selector: {env: production, role: log-processor}
pipeline:
  input: {generate: {interval: 100ms, message: "ERROR disk almost full"}}
  processors:
    - filter: {contains: ERROR}
  output: {file: {path: out/app-errors.log}}
YAML
check "pipeline apply" cairnctl pipeline apply -f "$STACK_DIR/app-errors.yaml"
eventually "n1 runs app-errors" 10 node_runs n1 app-errors
eventually "n2 runs app-errors" 10 node_runs n2 app-errors
check "n1 writes the pipeline output" grows "$STACK_DIR/nodes/n1/out/app-errors.log"
check "n2 writes the pipeline output" grows "$STACK_DIR/nodes/n2/out/app-errors.log"
eventually "n3 has applied its (empty) desired state" 5 bash -c "cairnctl -o json node get n3 | jq -e '(.health.applied_generation|tonumber) >= 1'"
check "n3 (not matching) does not run it" node_lacks n3 app-errors
check "n3 has no output" test ! -e "$STACK_DIR/nodes/n3/out/app-errors.log"
check "only ERROR lines pass the filter" bash -c "! grep -v ERROR '$STACK_DIR/nodes/n1/out/app-errors.log'"
eventually "pipeline status counts 2 targeted, 2 running" 5 bash -c "cairnctl pipeline status app-errors | grep -q 'targeted 2, applied 2, running 2, failed 0, pending 0'"
check "re-applying the same file changes nothing" bash -c "cairnctl pipeline apply -f '$STACK_DIR/app-errors.yaml' | grep -q 'unchanged (version 1)'"

cat >"$STACK_DIR/staging.yaml" <<YAML
name: staging-beat
workspace: $WS
selector: "env in (staging,qa),!legacy"
pipeline:
  input: {generate: {interval: 100ms, message: "beat"}}
  output: {mqtt: {stream: beats}}
YAML
check "string-form selector pipeline apply" cairnctl pipeline apply -f "$STACK_DIR/staging.yaml"
eventually "n3 runs staging-beat" 10 node_runs n3 staging-beat
check "its records reach the workspace data topic" bash -c "mosquitto_sub -V mqttv5 -h localhost -p $AUTH_PORT --cafile '$CAIRN_CA_FILE' -u user:admin -P \"\$(cat '$CAIRN_PASSWORD_FILE')\" -t 'cairn/v1/ws/$WS/data/beats' -C 1 -W 10 | grep -q beat"
check "n1 does not run staging-beat" node_lacks n1 staging-beat
check_fails "a pipeline file with an unknown key is refused" "unknown key" bash -c "sed 's/interval:/intervall:/' '$STACK_DIR/staging.yaml' > '$STACK_DIR/bad.yaml' && cairnctl pipeline apply -f '$STACK_DIR/bad.yaml'"

t_section "relabelling"
cairnctl events --count 1 -o json >"$STACK_DIR/events.json" 2>"$STACK_DIR/events.err" & EVENTS_PID=$!
wait_until 10 grep -q "following events" "$STACK_DIR/events.err"
check "label n3 into production/log-processor" cairnctl node label n3 env=production role=log-processor
check "cairnctl events shows the label change" bash -c "wait_pid() { while kill -0 $EVENTS_PID 2>/dev/null; do sleep 0.1; done; }; wait_pid; jq -e '.type == \"NODE_LABELS_CHANGED\" and .node == \"n3\" and .labels.env == \"production\"' '$STACK_DIR/events.json'"
eventually "n3 picks app-errors up" 10 node_runs n3 app-errors
eventually "n3 drops staging-beat" 10 node_lacks n3 staging-beat
check "n3 writes output" grows "$STACK_DIR/nodes/n3/out/app-errors.log"
check "remove role from n1" cairnctl node label n1 role-
eventually "n1 stops app-errors" 10 node_lacks n1 app-errors
N1_LINES=$(lines "$STACK_DIR/nodes/n1/out/app-errors.log")
two_reports n1
check "n1's output stopped growing" test "$(lines "$STACK_DIR/nodes/n1/out/app-errors.log")" -eq "$N1_LINES"

t_section "pipeline delete"
check "pipeline delete" cairnctl pipeline delete app-errors
for n in n2 n3; do eventually "$n stops app-errors" 10 node_lacks $n app-errors; done
check_fails "the deleted pipeline is gone" "does not exist" cairnctl pipeline get app-errors

t_section "bad input"
REG_PID=$(stack_pid registry)
# (A node's client id must be its principal: this briefly displaces the n2
# daemon, which reconnects.)
check "a node may publish garbage to its own health topic" \
  mosquitto_pub -V mqttv5 -h localhost -p $NODE_PORT -i "node:$WS:n2" --cafile "$STACK_DIR/nodes/n2/ca.crt" \
    --cert "$STACK_DIR/nodes/n2/node.crt" --key "$STACK_DIR/nodes/n2/node.key" \
    -t "cairn/v1/ws/$WS/nodes/n2/health" -m 'this is not protobuf' -q 1
eventually "the registry logs and counts it" 5 grep -q "malformed health on cairn/v1/ws/$WS/nodes/n2/health.*so far: 1" "$STACK_DIR/logs/registry.log"
check "garbage RPC to the registry" mosquitto_pub -V mqttv5 -h localhost -p $AUTH_PORT --cafile "$CAIRN_CA_FILE" \
    -u user:admin -P "$(cat "$CAIRN_PASSWORD_FILE")" -t cairn/v1/rpc/registry/ListNodes -m $'\xff\xff\xff' \
    -i e2e-garbage -D publish response-topic cairn/v1/reply/user:admin/e2e-garbage/x -q 1
eventually "the registry logs and counts the malformed request" 5 \
  grep -q "malformed cairn.v1.ListNodesRequest for ListNodes (invalid requests: " "$STACK_DIR/logs/registry.log"
check "the registry is still running and answering" bash -c "kill -0 $REG_PID && cairnctl node get n2 >/dev/null"
check "garbage RPC to the scheduler" mosquitto_pub -V mqttv5 -h localhost -p $AUTH_PORT --cafile "$CAIRN_CA_FILE" \
    -u user:admin -P "$(cat "$CAIRN_PASSWORD_FILE")" -t cairn/v1/rpc/scheduler/ApplyPipeline -m 'not protobuf at all' \
    -i e2e-garbage -D publish response-topic cairn/v1/reply/user:admin/e2e-garbage/x -q 1
eventually "the scheduler logs and counts the malformed request" 5 \
  grep -q "malformed cairn.v1.ApplyPipelineRequest for ApplyPipeline (invalid requests: " "$STACK_DIR/logs/scheduler.log"
check "the scheduler still answers" cairnctl pipeline list
check_fails "an operator cannot forge a node's health" "denied|not authori[sz]ed|Not authorized" \
  bash -c "mosquitto_pub -V mqttv5 -h localhost -p $AUTH_PORT --cafile '$CAIRN_CA_FILE' -u user:admin -P \"\$(cat '$CAIRN_PASSWORD_FILE')\" -t 'cairn/v1/ws/$WS/nodes/n2/health' -m x -q 1 2>&1; exit 1"

t_section "files a pipeline may touch (the node's roots)"
# Every node runs with the default roots: it reads below DATA_DIR/in and
# writes below DATA_DIR/out. The pipelines below target every node; n2 is checked.
cat >"$STACK_DIR/steal-key.yaml" <<YAML
name: steal-key
workspace: $WS
pipeline:
  input: {file: {path: $STACK_DIR/nodes/n2/node.key, from_beginning: true}}
  output: {mqtt: {stream: loot}}
YAML
cat >"$STACK_DIR/read-etc.yaml" <<YAML
name: read-etc
workspace: $WS
pipeline:
  input: {file: {path: /etc/hostname, from_beginning: true}}
  output: {file: {path: out/hostname.log}}
YAML
cat >"$STACK_DIR/still-fine.yaml" <<YAML
name: still-fine
workspace: $WS
pipeline:
  input: {generate: {interval: 1s, message: "fine"}}
  output: {file: {path: out/fine.log}}
YAML
pipeline_failed_with() { # NODE PIPELINE TEXT
  node_json "$1" | jq -e --arg p "$2" --arg t "$3" \
    '.health.pipelines // [] | map(select(.name == $p and .state == "FAILED" and (.last_error | contains($t)))) | length == 1' >/dev/null
}
for f in steal-key read-etc still-fine; do check "apply $f" cairnctl pipeline apply -f "$STACK_DIR/$f.yaml"; done
eventually "the node refuses its own key: that pipeline is failed, saying why" 15 \
  pipeline_failed_with n2 steal-key "node.key\" is outside the directories pipelines may read"
eventually "a path outside the readable roots fails its pipeline, naming the setting" 15 \
  pipeline_failed_with n2 read-etc "--allow-read"
eventually "the other pipelines keep running and write below out/" 15 \
  bash -c "test -s '$STACK_DIR/nodes/n2/out/fine.log'"
check "still-fine reports running" node_runs n2 still-fine
for f in steal-key read-etc still-fine; do check "delete $f" cairnctl pipeline delete $f; done

t_section "liveness"
cat >"$STACK_DIR/everywhere.yaml" <<YAML
name: everywhere
workspace: $WS
pipeline:
  input: {generate: {interval: 1s, message: "tick"}}
  output: {file: {path: out/ticks.log}}
YAML
check "a pipeline for every node (no selector)" cairnctl pipeline apply -f "$STACK_DIR/everywhere.yaml"
for n in n1 n2 n3; do eventually "$n runs everywhere" 10 node_runs $n everywhere; done
kill -9 "$(stack_pid node-n2)"
eventually "kill -9 of n2 shows it offline" 20 bash -c "cairnctl node list | grep -Eq '^n2 +offline'"
# Targeted: n1, n2, n3 and the winner of the token race (bootstrapped, never
# started: pending too).
check "pipeline status counts the offline node as pending, not failed" \
  bash -c "cairnctl pipeline status everywhere | grep -q 'targeted 4, applied 2, running 2, failed 0, pending 2'"
check "and shows n2 offline and pending" bash -c "cairnctl pipeline status everywhere | grep -Eq '^n2 +offline +pending'"
check "node revoke" cairnctl node revoke n3
eventually "n3 shows as revoked" 5 node_state_is n3 revoked
eventually "the broker cut n3 off" 10 grep -Eq "disconnected by broker|connection lost" "$STACK_DIR/logs/node-n3.log"
# The broker refuses n3's certificate from now on; n3, refused three times
# in a row, stops and exits 78.
N3=$(stack_pid node-n3)
eventually "n3 learns it is revoked and stops retrying" 30 bash -c "! kill -0 $N3 2>/dev/null"
wait "$N3"
check "n3 exits with code 78" test "$?" = 78
D3="$STACK_DIR/nodes/n3"
check_fails "the broker refuses n3's certificate at connect" "Not authorized" \
  mosquitto_pub -V mqttv5 -h localhost -p "$NODE_PORT" -i "node:$WS:n3" -u "node:$WS:n3" --cafile "$D3/ca.crt" \
    --cert "$D3/node.crt" --key "$D3/node.key" -t "cairn/v1/ws/$WS/nodes/n3/health" -m x -q 1
check_fails "a revoked node name cannot be bootstrapped again" "was revoked" \
  cairn-edge bootstrap --token "$(cairnctl token create)" --name n3 --data-dir "$STACK_DIR/nodes/n3-again"

t_section "workspace delete"
check_fails "delete is refused while nodes remain" "still has" cairnctl workspace delete $WS
check "delete --force" cairnctl workspace delete $WS --force
check_fails "the workspace is gone" "does not exist" cairnctl workspace get $WS
check_fails "its nodes are gone" "does not exist" cairnctl node list

t_finish
