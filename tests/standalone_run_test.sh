#!/usr/bin/env bash
# `cairn-edge run --pipeline FILE` (issue 6 §6): a pipeline file runs locally
# with the node's runtime, validator and file roots, without a control plane;
# Ctrl-C stops it cleanly (batch flushed); a bad file is refused with the
# field path and exit 1; an mqtt output without --broker-url is refused naming
# the flag, and with one its records reach a local Mosquitto through the
# queue; an http output whose sink fails, then recovers, loses nothing.
# (The examples in docs/ are checked by config_examples_test.sh.)
set -uo pipefail
SRC_DIR=${CAIRN_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BIN_DIR=${CAIRN_BIN_DIR:-$SRC_DIR/build/bin}
source "$SRC_DIR/tests/lib/assert.sh"
source "$SRC_DIR/tests/lib/stack.sh"
EDGE="$BIN_DIR/cairn-edge"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

lines_are() { [[ -f "$1" ]] && (( $(wc -l <"$1") == $2 )); }

# Starts `cairn-edge run --pipeline ...` in $tmp/run (its data dir: the
# current directory) with output to $tmp/run.log; sets RUN_PID.
start_run() {
  (cd "$tmp/run" && exec "$EDGE" run --pipeline "$@") >"$tmp/run.log" 2>&1 &
  RUN_PID=$!
  pids+=("$RUN_PID")
}
# Sends SIGINT and returns the run's exit code.
stop_run() {
  kill -INT "$RUN_PID"
  wait "$RUN_PID"
}

t_section "a generate -> file pipeline runs and stops on Ctrl-C"
mkdir -p "$tmp/run"
cat >"$tmp/run/gen.yaml" <<'EOF'
name: gen
pipeline:
  input: {generate: {interval: 10ms, message: "ERROR disk full", count: 20}}
  processors:
    - filter: {regex: '^ERROR\s+disk'}
  output: {file: {path: out/gen.log}}
EOF
start_run gen.yaml
eventually "the 20 records are in DATA_DIR/out/gen.log" 20 lines_are "$tmp/run/out/gen.log" 20
stop_run; rc=$?
check "Ctrl-C stops it with exit 0" test "$rc" -eq 0
check "it prints the pipeline's counters" grep -q "pipeline gen: in 20, out 20, dropped 0, errors 0" "$tmp/run.log"
check "the records are the generated line" bash -c "[[ \$(sort -u '$tmp/run/out/gen.log') == 'ERROR disk full' ]]"

t_section "Ctrl-C flushes what batch holds"
cat >"$tmp/run/batch.yaml" <<'EOF'
name: held
pipeline:
  input: {generate: {interval: 10ms, message: x, count: 3}}
  processors:
    - batch: {max_records: 100, max_wait: 1h, format: lines}
  output: {file: {path: batched.log}}
EOF
start_run batch.yaml
eventually "it started" 20 grep -q "running pipeline held" "$tmp/run.log"
sleep 0.5  # the 3 records take 30 ms to generate; nothing to await on the outside
stop_run; rc=$?
check "stopped with exit 0" test "$rc" -eq 0
check "the held batch was written on stop" lines_are "$tmp/run/out/batched.log" 3

t_section "refusals"
printf 'name: bad\npipeline:\n  input: generate\n  processors: [{filter: {regex: "(a)\\\\1"}}]\n  output: stdout\n' \
  >"$tmp/run/bad.yaml"
check_fails "a bad regex is refused with its field path" \
  '^cairn-edge: bad.yaml: pipeline.processors\[0\].filter.regex: invalid regex' \
  bash -c "cd '$tmp/run' && '$EDGE' run --pipeline bad.yaml"
(cd "$tmp/run" && "$EDGE" run --pipeline bad.yaml) >/dev/null 2>&1
check "... with exit code 1" test $? -eq 1
check_fails "--check refuses it the same way" 'pipeline.processors\[0\].filter.regex: invalid regex' \
  "$EDGE" run --pipeline "$tmp/run/bad.yaml" --check
printf 'name: bad\npipeline:\n  input: {generate: {intervall: 1s}}\n  output: stdout\n' >"$tmp/run/typo.yaml"
check_fails "an unknown key is refused with its path" 'pipeline.input.generate.intervall: unknown key' \
  "$EDGE" run --pipeline "$tmp/run/typo.yaml" --check
printf 'name: m\npipeline:\n  input: generate\n  output: {mqtt: {stream: s}}\n' >"$tmp/run/mqtt.yaml"
check_fails "an mqtt output without a broker is refused naming --broker-url" \
  'pipeline.output.mqtt: .*add --broker-url URL' bash -c "cd '$tmp/run' && '$EDGE' run --pipeline mqtt.yaml"
printf 'name: w\npipeline:\n  input: generate\n  output: {file: {path: %s/elsewhere/x.log}}\n' "$tmp" \
  >"$tmp/run/outside.yaml"
start_run outside.yaml
wait "$RUN_PID"; rc=$?
check "a path outside the roots fails the pipeline (exit 1)" test "$rc" -eq 1
check "... saying which setting allows it" grep -q "allow-write" "$tmp/run.log"
check "... and nothing was written there" test ! -e "$tmp/elsewhere/x.log"
mkdir -p "$tmp/elsewhere"
printf 'name: w\npipeline:\n  input: {generate: {count: 1, interval: 10ms}}\n  output: {file: {path: %s/elsewhere/x.log}}\n' \
  "$tmp" >"$tmp/run/outside.yaml"
start_run outside.yaml --allow-write "$tmp/elsewhere"
eventually "with --allow-write DIR the same file is written" 20 lines_are "$tmp/elsewhere/x.log" 1
stop_run

t_section "an http output: a sink that fails, then recovers, gets every record in order"
cat >"$tmp/sink.py" <<'EOF'
# Answers 503 to the first two POSTs, then 200; appends accepted bodies to a file.
import http.server, sys
failures = [503, 503]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        status = failures.pop(0) if failures else 200
        if status == 200:
            with open(sys.argv[1], 'ab') as f:
                f.write(body)
        self.send_response(status)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
python3 "$tmp/sink.py" "$tmp/received" >"$tmp/sink.port" &
pids+=($!)
wait_until 10 test -s "$tmp/sink.port"
mkdir -p "$tmp/run/in"
seq 1 100 | sed 's/^/record-/' >"$tmp/run/in/records.log"
printf 'name: h\npipeline:\n  input: {file: {path: in/records.log, from_beginning: true}}\n  output: {http: {url: "http://127.0.0.1:%s/ingest", format: lines, max_records: 10, max_backoff: 100ms}}\n' \
  "$(cat "$tmp/sink.port")" >"$tmp/run/http.yaml"
start_run http.yaml
eventually "all 100 records reach the sink" 20 lines_are "$tmp/received" 100
stop_run; rc=$?
check "in order, none twice" bash -c "diff <(seq 1 100 | sed 's/^/record-/') '$tmp/received'"
check "stopped with exit 0; nothing dropped" \
  bash -c "(( $rc == 0 )) && grep -q 'pipeline h: in 100, out 100, dropped 0' '$tmp/run.log'"
check "the failures were logged with the pipeline's name" grep -q "pipeline h: http: 127.0.0.1:.*answered 503" "$tmp/run.log"

t_section "an mqtt output with --broker-url publishes through the queue"
if command -v mosquitto >/dev/null && command -v mosquitto_sub >/dev/null; then
  port=$(stack_free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$tmp/mosquitto.conf"
  mosquitto -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
  pids+=($!)
  wait_until 10 stack_port_open "$port"
  mosquitto_sub -p "$port" -t 'cairn/v1/ws/local/data/s' -F '%t %p' >"$tmp/sub.out" 2>&1 &
  pids+=($!)
  sleep 0.3  # mosquitto_sub has no "subscribed" signal; the first record is 1 s away anyway
  printf 'name: m\npipeline:\n  input: {generate: {interval: 10ms, message: marker-%s, count: 5}}\n  output: {mqtt: {stream: s}}\n' \
    "$port" >"$tmp/run/mqtt.yaml"
  start_run mqtt.yaml --broker-url "tcp://127.0.0.1:$port"
  eventually "the 5 records arrive at cairn/v1/ws/local/data/s" 20 \
    bash -c "(( \$(grep -c marker-$port '$tmp/sub.out') == 5 ))"
  stop_run; rc=$?
  check "stopped with exit 0 and an empty queue" \
    bash -c "(( $rc == 0 )) && grep -q 'queued and not yet sent 0' '$tmp/run.log'"
else
  t_pass "skipped: mosquitto not installed"
fi

t_finish
