#!/usr/bin/env bash
# cairn-bench-edge (build/bin/cairn-bench-edge runs this script; also
# ./cairn-dev bench edge): the edge node's footprint and throughput, measured
# on a real node against a throw-away stack (tests/lib/stack.sh: PostgreSQL,
# Mosquitto with the Cairn plugin, registry, scheduler on loopback), with
# Debian's rsyslog doing the same file work beside it. Prints figures, never
# judges them (docs/benchmarks.md lists the targets and anchors).
#
#   cairn-bench-edge [--quick] [--edge-bin FILE] [--window S] [--lines N] [--backlog N]
#                    [--rate N] [--keep] [--profile]
#
#   --quick        short windows and smaller work (the test suite's smoke run):
#                  --window 10 --lines 100000 --backlog 20000
#   --edge-bin F   the cairn-edge binary to measure (default $CAIRN_BENCH_EDGE_BIN,
#                  else BIN_DIR/cairn-edge); the stack comes from BIN_DIR
#   --window S     length of the idle and the load window (default 60 s)
#   --lines N      lines of the throughput file, half of them match (default 1,000,000)
#   --backlog N    records queued while the link is cut (default 100,000)
#   --rate N       records/s of each of the three load pipelines (default 1,000)
#   --keep         keep the state dir (logs, queue, outputs) for a look afterwards
#   --profile      sample the node with `perf record -e cpu-clock` during the load
#                  window and the mqtt throughput run, and print the top symbols
#                  (those two phases' figures then include perf's overhead)
#
# Phases, in this order (one node, data dir $STACK_DIR/nodes/bench-1):
#   binary     a stripped copy's size; the shared libraries `ldd` lists beyond
#              glibc and the C++ runtime (libc, libm, libpthread, libdl, librt,
#              ld-linux, libstdc++, libgcc_s), each file's size
#   idle       node connected, no pipeline; RSS and PSS from smaps_rollup, CPU
#              from /proc/PID/stat (utime+stime) over the window
#   load       three pipelines `generate {rate}` -> `mqtt`; after a 5 s warm-up,
#              CPU over the window, RSS/PSS at its end, records/s a subscriber got
#   backlog    `file` -> `mqtt`; one primer line proves the path, then the node's
#              port is cut (iptables REJECT --reject-with tcp-reset on lo, removed
#              on exit), the backlog is appended, and once the queue stopped
#              growing the rule goes; the subscriber times every record's arrival
#   throughput `file` (from the beginning) -> `filter {contains: ERROR}` -> `mqtt`
#              over the whole file: delivered records/s (subscriber-confirmed,
#              distinct cairn-seq), node CPU per delivered record, peak RSS
#              (VmHWM, reset before), records lost; then the same into a `file`
#              output; then rsyslogd (imfile -> filter -> omfile), plain and with a
#              disk-assisted action queue, on the same file.
# Needs root (iptables; the stack's PostgreSQL runs as user postgres),
# iptables and rsyslog (./cairn-dev deps installs both).
# Exit: 0 every figure measured; 1 some phase failed (its figures say FAILED).
set -uo pipefail

SRC_DIR=${CAIRN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BIN_DIR=${CAIRN_BIN_DIR:-$SRC_DIR/build/bin}
PLUGIN=${CAIRN_PLUGIN:-$SRC_DIR/build/lib/cairn_mosquitto_plugin.so}
EDGE_BIN=${CAIRN_BENCH_EDGE_BIN:-}
QUICK=0 KEEP=0 PROFILE=0 WINDOW="" LINES="" BACKLOG="" RATE=1000
WARMUP=5
WS=bench NODE=bench-1
export CAIRN_WORKSPACE=$WS

die() { printf 'cairn-bench-edge: %s\n' "$*" >&2; exit 1; }
say() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

while (($#)); do
  case "$1" in
    --quick) QUICK=1 ;;
    --keep) KEEP=1 ;;
    --profile) PROFILE=1 ;;
    --edge-bin) EDGE_BIN=${2:?--edge-bin needs a file}; shift ;;
    --window) WINDOW=${2:?}; shift ;;
    --lines) LINES=${2:?}; shift ;;
    --backlog) BACKLOG=${2:?}; shift ;;
    --rate) RATE=${2:?}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
done
if ((QUICK)); then
  WINDOW=${WINDOW:-10} LINES=${LINES:-100000} BACKLOG=${BACKLOG:-20000}
else
  WINDOW=${WINDOW:-60} LINES=${LINES:-1000000} BACKLOG=${BACKLOG:-100000}
fi
for v in WINDOW LINES BACKLOG RATE; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "--${v,,} wants a positive whole number"
done
EDGE_BIN=${EDGE_BIN:-$BIN_DIR/cairn-edge}
PROBE=$BIN_DIR/cairn-bench-edge-probe
[[ $(id -u) -eq 0 ]] || die "needs root (iptables cuts the node's link; the stack's PostgreSQL runs as postgres)"
for f in "$EDGE_BIN" "$PROBE" "$BIN_DIR/cairnctl" "$BIN_DIR/cairn-registry" "$BIN_DIR/cairn-scheduler"; do
  [[ -x "$f" ]] || die "$f not found (build first: ./cairn-dev build, or cmake --build build --target cairn-bench-edge-probe)"
done
command -v iptables >/dev/null || die "iptables not found (apt-get install iptables)"
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
[[ -x "$RSYSLOGD" ]] || die "rsyslogd not found (apt-get install rsyslog)"
EDGE_BIN=$(readlink -f "$EDGE_BIN")
((PROFILE)) && ! command -v perf >/dev/null && die "--profile needs perf (apt-get install linux-perf)"
MATCH=$(( (LINES + 1) / 2 ))
CLK_TCK=$(getconf CLK_TCK)

STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-edge.XXXXXX")
export SRC_DIR BIN_DIR PLUGIN STACK_DIR
# shellcheck source=tests/lib/stack.sh
source "$SRC_DIR/tests/lib/stack.sh"

CUT_RULE=()
NODE_PID="" RSYSLOG_PID="" PROBE_PID="" PERF_PID=""
cleanup() {
  [[ -n "$PERF_PID" ]] && kill -INT "$PERF_PID" 2>/dev/null
  if ((${#CUT_RULE[@]})); then iptables -D "${CUT_RULE[@]}" 2>/dev/null; fi
  [[ -n "$PROBE_PID" ]] && kill "$PROBE_PID" 2>/dev/null
  [[ -n "$RSYSLOG_PID" ]] && kill "$RSYSLOG_PID" 2>/dev/null
  stack_down
  if ((KEEP)); then say "kept $STACK_DIR"; else rm -rf "$STACK_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- measuring a process --------------------------------------------------

# CPU time (utime + stime, all threads) of PID in clock ticks.
cpu_ticks() { local s; s=$(<"/proc/$1/stat") && s=${s##*) } && awk '{ print $12 + $13 }' <<<"$s"; }
# Time on a CPU of PID's live threads, ns (schedstat; finer than the ticks of
# /proc/PID/stat, but threads that ended are not in it: for the idle window).
sched_ns() { cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
# A field of PID's smaps_rollup (Rss, Pss, ...) or status (VmHWM, ...), kB.
smaps_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
now_ns() { date +%s%N; }
# Formatting: MB (10^6 bytes) from kB or bytes, thousands separators.
kb_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k * 1024 / 1e6 }'; }
b_mb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e6 }'; }
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" -v f="${3:-%.1f}" 'BEGIN { if (b == 0) print "n/a"; else printf f, a / b }'; }

# Figures: collected in order, printed at the end as one table.
FIG_NAMES=() FIG_VALUES=() FIG_NOTES=()
FAILED=0
fig() { FIG_NAMES+=("$1"); FIG_VALUES+=("$2"); FIG_NOTES+=("${3:-}"); }
fig_failed() { fig "$1" "FAILED" "$2"; FAILED=1; }

# rss_by_mapping PID: where the RSS is, from /proc/PID/smaps: kB of Rss and
# of Private_Clean+Private_Dirty per mapped file (anonymous memory, heap and
# stacks as one line each), largest first.
rss_by_mapping() {
  awk '
    /^[0-9a-f]+-[0-9a-f]+ / { name = (NF >= 6) ? $6 : "[anonymous]"; if (name ~ /^\[stack/) name = "[stacks]"; next }
    $1 == "Rss:" { rss[name] += $2 }
    $1 == "Private_Clean:" || $1 == "Private_Dirty:" { priv[name] += $2 }
    END { for (n in rss) if (rss[n] > 0) printf "%d %d %s\n", rss[n], priv[n], n }
  ' "/proc/$1/smaps" | sort -rn
}

# perf_start NAME / perf_stop NAME: with --profile, samples the node between
# the two and keeps the flat profile (self time by library and symbol) in
# $STACK_DIR/profile-NAME.txt.
PROFILES=()
perf_start() {
  ((PROFILE)) || return 0
  perf record -e cpu-clock -F 999 -p "$NODE_PID" -o "$STACK_DIR/perf-$1.data" >"$STACK_DIR/perf-$1.out" 2>&1 &
  PERF_PID=$!
  sleep 0.5  # perf attaches
}
perf_stop() {
  ((PROFILE)) && [[ -n "$PERF_PID" ]] || return 0
  kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null; PERF_PID=""
  perf report -i "$STACK_DIR/perf-$1.data" --stdio --sort dso,symbol --percent-limit 1.5 2>/dev/null \
    | grep -Ev '^#|^$' | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//; s/  +/  /g' \
    | head -25 >"$STACK_DIR/profile-$1.txt"
  PROFILES+=("$1")
}

# --- the stack and the node -----------------------------------------------

cairnctl() { "$BIN_DIR/cairnctl" "$@"; }
node_dir() { echo "$STACK_DIR/nodes/$NODE"; }
node_state() { cairnctl -o json node get "$NODE" 2>/dev/null | jq -r .state; }
node_online() { [[ "$(node_state)" == online ]]; }

probe() { # probe ARGS... (count on this stack's broker as admin)
  "$PROBE" count --url "ssl://localhost:$AUTH_PORT" --ca "$CAIRN_CA_FILE" --user user:admin \
    --password-file "$CAIRN_PASSWORD_FILE" "$@"
}
# probe_start OUT ARGS...: a counting probe in the background; returns once
# it is subscribed (PROBE_PID set).
probe_start() {
  local out=$1; shift
  rm -f "$out.ready"
  probe --ready-file "$out.ready" "$@" >"$out" 2>"$out.err" &
  PROBE_PID=$!
  wait_until 15 test -s "$out.ready" || { cat "$out.err" >&2; return 1; }
}
probe_wait() { wait "$PROBE_PID"; local rc=$?; PROBE_PID=""; return $rc; }
# field OUT KEY: a key=value of a probe's line.
field() { tr ' ' '\n' <"$1" | sed -n "s/^$2=//p"; }

apply() { # apply NAME YAML-BODY (the pipeline: part)
  printf 'name: %s\nworkspace: %s\npipeline:\n%s\n' "$1" "$WS" "$2" >"$STACK_DIR/$1.yaml"
  cairnctl -w "$WS" pipeline apply -f "$STACK_DIR/$1.yaml" >/dev/null
}
delete() { cairnctl -w "$WS" pipeline delete "$1" >/dev/null; }

start_node() {
  local token
  token=$(cairnctl -w "$WS" token create --uses 1 --ttl 10m --description bench) || return 1
  CAIRN_EDGE_BOOTSTRAP_TOKEN=$token "$EDGE_BIN" bootstrap --name "$NODE" --data-dir "$(node_dir)" \
    >"$STACK_DIR/logs/bootstrap.out" 2>&1 || { cat "$STACK_DIR/logs/bootstrap.out" >&2; return 1; }
  mkdir -p "$(node_dir)/in"
  "$EDGE_BIN" run --data-dir "$(node_dir)" --log-file "$STACK_DIR/logs/node-$NODE.log" \
    >>"$STACK_DIR/logs/node-$NODE.out" 2>&1 &
  NODE_PID=$!
  echo "$NODE_PID" >"$STACK_DIR/run/node-$NODE.pid"
  wait_until 30 node_online || { tail -20 "$STACK_DIR/logs/node-$NODE.log" >&2; return 1; }
}

# queue_bytes: the size of the node's queue segments on disk.
queue_bytes() { find "$(node_dir)/queue" -name '*.seg' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# --- phases ---------------------------------------------------------------

machine() {
  local cpu cores
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  cores=$(nproc)
  MACHINE="${cpu:-unknown CPU}, $cores cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg) at start"
}

phase_binary() {
  local copy="$STACK_DIR/cairn-edge.stripped"
  cp "$EDGE_BIN" "$copy" && strip --strip-all "$copy"
  local size; size=$(stat -c %s "$copy")
  fig "binary stripped" "$(b_mb "$size") MB" "$(thousands "$size") bytes; unstripped $(b_mb "$(stat -c %s "$EDGE_BIN")") MB"
  local libs total=0 names=() line lib path s
  if ! libs=$(ldd "$EDGE_BIN" 2>&1) || grep -q "not a dynamic executable\|statically linked" <<<"$libs"; then
    fig "shared libraries" "0.00 MB" "static executable: no shared library"
    return
  fi
  while read -r line; do
    lib=$(awk '{ print $1 }' <<<"$line")
    path=$(awk '$2 == "=>" { print $3 }' <<<"$line")
    [[ -n "$path" && -e "$path" ]] || continue
    [[ "$lib" =~ ^(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|ld-linux.*)\.so ]] && continue
    s=$(stat -L -c %s "$path")
    total=$((total + s))
    names+=("$lib $(b_mb "$s")")
  done <<<"$libs"
  if ((${#names[@]} == 0)); then
    fig "shared libraries" "0.00 MB" "none beyond glibc and the C++ runtime"
    return
  fi
  fig "shared libraries" "$(b_mb "$total") MB" "${#names[@]} beyond glibc/libstdc++/libgcc_s: $(IFS=,; echo "${names[*]}" | sed 's/,/, /g')"
}

phase_idle() {
  say "idle: ${WINDOW} s window, node connected, no pipeline"
  sleep 3  # let the start-up (first health, desired state) settle
  local t0 t1 n0 n1 s0 s1
  t0=$(cpu_ticks "$NODE_PID"); s0=$(sched_ns "$NODE_PID"); n0=$(now_ns)
  sleep "$WINDOW"
  t1=$(cpu_ticks "$NODE_PID"); s1=$(sched_ns "$NODE_PID"); n1=$(now_ns)
  local note="utime+stime over $WINDOW s$( ((QUICK)) && echo " (quick mode; the full run uses 60 s)"), resolution $(ratio 100 "$(( CLK_TCK * WINDOW ))" %.3f) %;"
  note+=" schedstat of its threads: $(awk -v s=$((s1 - s0)) -v ns=$((n1 - n0)) 'BEGIN { printf "%.4f", 100 * s / ns }') %"
  fig "idle CPU" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v ns=$((n1 - n0)) 'BEGIN { printf "%.3f", 100 * t / hz / (ns / 1e9) }') % of a core" "$note"
  fig "idle RSS" "$(kb_mb "$(smaps_kb "$NODE_PID" Rss)") MB" "smaps_rollup"
  fig "idle PSS" "$(kb_mb "$(smaps_kb "$NODE_PID" Pss)") MB" "shared pages split with the other processes mapping them (registry, scheduler)"
  rss_by_mapping "$NODE_PID" >"$STACK_DIR/idle-rss-by-mapping"
  fig "idle private" "$(kb_mb $(( $(smaps_kb "$NODE_PID" Private_Clean) + $(smaps_kb "$NODE_PID" Private_Dirty) ))) MB" \
    "Private_Clean + Private_Dirty (anonymous $(kb_mb "$(smaps_kb "$NODE_PID" Anonymous)") MB): what no other process shares"
}

phase_load() {
  say "load: 3 pipelines of generate ${RATE}/s -> mqtt; ${WARMUP} s warm-up, ${WINDOW} s window"
  local i msg="load record: 2026-12-02T12:00:00Z edge-host app[4242]: INFO heartbeat from the benchmark pipeline"
  for i in 1 2 3; do
    apply "load-$i" "  input: {generate: {rate: $RATE, message: \"$msg\"}}
  output: {mqtt: {stream: load-$i}}" || { fig_failed "load CPU" "pipeline apply failed"; return 1; }
  done
  local out="$STACK_DIR/probe-load"
  if ! probe --topic "cairn/v1/ws/$WS/data/+" --expect "$RATE" --timeout 30 >"$out.first" 2>&1; then
    fig_failed "load CPU" "no records reached the broker within 30 s: $(cat "$out.first")"
    return 1
  fi
  sleep "$WARMUP"
  probe_start "$out" --topic "cairn/v1/ws/$WS/data/+" --seconds "$WINDOW" || { fig_failed "load CPU" "probe"; return 1; }
  local t0 t1 n0 n1 hwm
  perf_start load
  t0=$(cpu_ticks "$NODE_PID"); n0=$(now_ns)
  echo 5 >"/proc/$NODE_PID/clear_refs"
  probe_wait
  perf_stop load
  t1=$(cpu_ticks "$NODE_PID"); n1=$(now_ns)
  hwm=$(status_kb "$NODE_PID" VmHWM)
  local got; got=$(field "$out" distinct)
  fig "load CPU" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v ns=$((n1 - n0)) 'BEGIN { printf "%.2f", 100 * t / hz / (ns / 1e9) }') % of a core" "3 x $RATE records/s over $WINDOW s$( ((QUICK)) && echo " (quick)")"
  fig "load RSS" "$(kb_mb "$(smaps_kb "$NODE_PID" Rss)") MB" "peak in the window $(kb_mb "$hwm") MB"
  fig "load PSS" "$(kb_mb "$(smaps_kb "$NODE_PID" Pss)") MB" ""
  fig "load delivered" "$(ratio "$got" "$WINDOW" %.0f) records/s" "counted by a subscriber ($(thousands "$got") distinct in $WINDOW s; offered $((3 * RATE))/s); duplicates $(field "$out" duplicates)"
  for i in 1 2 3; do delete "load-$i"; done
}

phase_backlog() {
  say "backlog: $(thousands "$BACKLOG") records queued while the node's port is cut"
  local d; d=$(node_dir)
  local f="$d/in/backlog.log" out="$STACK_DIR/probe-backlog"
  echo "backlog primer" >"$f"
  probe_start "$out.primer" --topic "cairn/v1/ws/$WS/data/backlog" --expect 1 --timeout 30 \
    || { fig_failed "backlog drain" "probe"; return 1; }
  apply backlog "  input: {file: {path: in/backlog.log, from_beginning: true}}
  output: {mqtt: {stream: backlog}}" || { fig_failed "backlog drain" "pipeline apply failed"; return 1; }
  if ! probe_wait; then
    fig_failed "backlog drain" "the primer did not reach the broker within 30 s"
    return 1
  fi
  probe_start "$out" --topic "cairn/v1/ws/$WS/data/backlog" --expect "$BACKLOG" --timeout 600 --idle 30 \
    || { fig_failed "backlog drain" "probe"; return 1; }
  local before; before=$(queue_bytes)
  CUT_RULE=(INPUT -i lo -p tcp --dport "$NODE_PORT" -j REJECT --reject-with tcp-reset)
  iptables -I "${CUT_RULE[@]}" || { CUT_RULE=(); fig_failed "backlog drain" "iptables failed"; return 1; }
  local cut_ns; cut_ns=$(now_ns)
  awk -v n="$BACKLOG" 'BEGIN { for (i = 1; i <= n; i++) printf "2026-12-02T12:00:00Z edge-host app[4242]: ERROR backlog record %07d while the link is down, to be sent later\n", i }' >>"$f"
  local line_len=$(( $(tail -1 "$f" | wc -c) - 1 ))
  # Queued once the segments grew by at least the payloads and stopped growing.
  local need=$(( before + BACKLOG * line_len )) last=-1 stable=0 q
  local deadline=$(( $(date +%s) + 300 ))
  while (( $(date +%s) < deadline )); do
    q=$(queue_bytes)
    if (( q >= need && q == last )); then
      stable=$((stable + 1)); ((stable >= 5)) && break
    else
      stable=0
    fi
    last=$q
    sleep 0.2
  done
  local filled_ns; filled_ns=$(now_ns)
  iptables -D "${CUT_RULE[@]}"; CUT_RULE=()
  local restore_ns; restore_ns=$(now_ns)
  if ((stable < 5)); then say "the queue did not reach the expected size ($q of $need bytes); timing anyway"; fi
  probe_wait
  local rc=$?
  local got first last dups
  got=$(field "$out" distinct); first=$(field "$out" first_ns); last=$(field "$out" last_ns); dups=$(field "$out" duplicates)
  if ((rc != 0)) || [[ -z "$got" ]] || ((got < BACKLOG)); then
    fig_failed "backlog drain" "only ${got:-0} of $BACKLOG records arrived ($( [[ "$(field "$out" stalled)" == 1 ]] && echo "none for 30 s" || echo "in 600 s"))"
    delete backlog
    return 1
  fi
  fig "backlog drain" "$(ratio "$BACKLOG" "$(awk -v a="$last" -v b="$first" 'BEGIN { print (a - b) / 1e9 }')" %.0f) records/s" \
    "$(thousands "$BACKLOG") records of $line_len B, first to last arrival $(awk -v a="$last" -v b="$first" 'BEGIN { printf "%.2f", (a - b) / 1e9 }') s; queued in $(awk -v a="$filled_ns" -v b="$cut_ns" 'BEGIN { printf "%.1f", (a - b) / 1e9 }') s while cut; duplicates $dups"
  fig "backlog reconnect" "$(awk -v a="$first" -v b="$restore_ns" 'BEGIN { printf "%.2f", (a - b) / 1e9 }') s" \
    "link restored -> first record arrived (the node's reconnect back-off: 1 s doubling to 15 s); restored -> all: $(awk -v a="$last" -v b="$restore_ns" 'BEGIN { printf "%.2f", (a - b) / 1e9 }') s"
  delete backlog
}

write_throughput_file() {
  local f=$1
  # Fixed-width lines (101 B + LF); even lines hold ERROR, odd DEBUG.
  awk -v n="$LINES" 'BEGIN { for (i = 0; i < n; i++) printf "2026-12-02T12:00:00.%06dZ edge-host app[4242]: %s request %07d on /srv/data: disk almost full\n", i % 1000000, (i % 2 == 0 ? "ERROR" : "DEBUG"), i }' >"$f"
  LINE_BYTES=$(( $(head -1 "$f" | wc -c) ))
  MATCH_BYTES=$(( MATCH * LINE_BYTES ))
}

# wait_size FILE BYTES TIMEOUT_S: polls the file's size every 50 ms.
wait_size() {
  local f=$1 want=$2 deadline=$(( $(date +%s) + $3 )) s
  while (( $(date +%s) < deadline )); do
    s=$(stat -c %s "$f" 2>/dev/null || echo 0)
    ((s >= want)) && return 0
    sleep 0.05
  done
  return 1
}

phase_throughput_mqtt() {
  say "throughput: file -> filter -> mqtt over $(thousands "$LINES") lines ($(thousands "$MATCH") match)"
  local out="$STACK_DIR/probe-tput" timeout=$(( QUICK ? 120 : 900 ))
  probe_start "$out" --topic "cairn/v1/ws/$WS/data/tput" --expect "$MATCH" --timeout "$timeout" --idle 20 \
    || { fig_failed "mqtt throughput" "probe"; return 1; }
  echo 5 >"/proc/$NODE_PID/clear_refs"
  perf_start mqtt-throughput
  local t0 t1 n0
  t0=$(cpu_ticks "$NODE_PID"); n0=$(now_ns)
  apply tput "  input: {file: {path: in/tput.log, from_beginning: true}}
  processors:
    - filter: {contains: ERROR}
  output: {mqtt: {stream: tput}}" || { fig_failed "mqtt throughput" "pipeline apply failed"; return 1; }
  probe_wait
  t1=$(cpu_ticks "$NODE_PID")
  perf_stop mqtt-throughput
  local hwm; hwm=$(status_kb "$NODE_PID" VmHWM)
  rss_by_mapping "$NODE_PID" >"$STACK_DIR/mqtt-rss-by-mapping"
  local got first last dups
  got=$(field "$out" distinct); first=$(field "$out" first_ns); last=$(field "$out" last_ns); dups=$(field "$out" duplicates)
  got=${got:-0}
  local secs; secs=$(awk -v a="${last:-0}" -v b="$n0" 'BEGIN { printf "%.2f", (a - b) / 1e9 }')
  if ((got == 0)); then
    fig_failed "mqtt throughput" "nothing arrived within $timeout s"
    delete tput
    return 1
  fi
  local note="$(thousands "$got") distinct records confirmed by a subscriber, apply -> last arrival $secs s"
  if ((got < MATCH)); then
    if [[ "$(field "$out" stalled)" == 1 ]]; then note+="; then nothing for 20 s: the rest is lost"; else note+="; TIMED OUT after $timeout s"; fi
  fi
  fig "mqtt throughput" "$(ratio "$got" "$secs" %.0f) records/s" "$note"
  fig "mqtt CPU per record" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$got" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }') us" \
    "node CPU $(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }') s / delivered records (each of the $(thousands "$LINES") lines read and filtered)"
  fig "mqtt RSS peak" "$(kb_mb "$hwm") MB" "VmHWM, reset before the run"
  fig "mqtt records lost" "$((MATCH - got))" "of $(thousands "$MATCH") matching; duplicates $dups"
  delete tput
}

phase_throughput_file() {
  say "throughput: file -> filter -> file (the same work as rsyslog's)"
  local d; d=$(node_dir)
  local o="$d/out/tput.log" timeout=$(( QUICK ? 120 : 600 ))
  rm -f "$o"
  echo 5 >"/proc/$NODE_PID/clear_refs"
  local t0 t1 n0 n1
  t0=$(cpu_ticks "$NODE_PID"); n0=$(now_ns)
  apply tput-file "  input: {file: {path: in/tput.log, from_beginning: true}}
  processors:
    - filter: {contains: ERROR}
  output: {file: {path: out/tput.log}}" || { fig_failed "file throughput" "pipeline apply failed"; return 1; }
  if ! wait_size "$o" "$MATCH_BYTES" "$timeout"; then
    fig_failed "file throughput" "out/tput.log has $(stat -c %s "$o" 2>/dev/null || echo 0) of $MATCH_BYTES bytes after $timeout s"
    delete tput-file
    return 1
  fi
  n1=$(now_ns); t1=$(cpu_ticks "$NODE_PID")
  local hwm; hwm=$(status_kb "$NODE_PID" VmHWM)
  fig "file throughput" "$(ratio "$MATCH" "$(awk -v a="$n1" -v b="$n0" 'BEGIN { print (a - b) / 1e9 }')" %.0f) records/s" \
    "apply -> $(thousands "$MATCH") lines in out/tput.log: $(awk -v a="$n1" -v b="$n0" 'BEGIN { printf "%.2f", (a - b) / 1e9 }') s"
  fig "file CPU per record" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$MATCH" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }') us" ""
  fig "file RSS peak" "$(kb_mb "$hwm") MB" "VmHWM, reset before the run"
  delete tput-file
}

# rsyslog_run NAME LABEL QUEUE-PARAMS: a private rsyslogd (own config, work
# dir and pid file; no system socket: only imfile is loaded) tailing the
# throughput file from its start into omfile, measured like the node.
rsyslog_run() {
  local name=$1 label=$2 queue=$3
  local w="$STACK_DIR/rsyslog-$name" timeout=$(( QUICK ? 120 : 600 ))
  mkdir -p "$w/work"
  cat >"$w/rsyslog.conf" <<CONF
# cairn-bench-edge: a private rsyslogd, $label
global(workDirectory="$w/work")
module(load="imfile" mode="inotify")
template(name="raw" type="string" string="%msg%\n")
ruleset(name="bench") {
  if (\$msg contains "ERROR") then {
    action(type="omfile" file="$w/out.log" template="raw"$queue)
  }
}
input(type="imfile" file="$(node_dir)/in/tput.log" tag="bench" ruleset="bench")
CONF
  local n0 n1 t1
  n0=$(now_ns)
  "$RSYSLOGD" -n -f "$w/rsyslog.conf" -i "$w/rsyslogd.pid" >"$w/rsyslogd.out" 2>&1 &
  RSYSLOG_PID=$!
  if ! wait_size "$w/out.log" "$MATCH_BYTES" "$timeout"; then
    fig_failed "$label throughput" "out.log has $(stat -c %s "$w/out.log" 2>/dev/null || echo 0) of $MATCH_BYTES bytes after $timeout s: $(head -3 "$w/rsyslogd.out")"
    kill "$RSYSLOG_PID"; wait "$RSYSLOG_PID" 2>/dev/null; RSYSLOG_PID=""
    return 1
  fi
  n1=$(now_ns); t1=$(cpu_ticks "$RSYSLOG_PID")
  local hwm; hwm=$(status_kb "$RSYSLOG_PID" VmHWM)
  kill "$RSYSLOG_PID"; wait "$RSYSLOG_PID" 2>/dev/null; RSYSLOG_PID=""
  fig "$label throughput" "$(ratio "$MATCH" "$(awk -v a="$n1" -v b="$n0" 'BEGIN { print (a - b) / 1e9 }')" %.0f) records/s" \
    "start -> $(thousands "$MATCH") lines in its omfile: $(awk -v a="$n1" -v b="$n0" 'BEGIN { printf "%.2f", (a - b) / 1e9 }') s"
  fig "$label CPU per record" "$(awk -v t="$t1" -v hz="$CLK_TCK" -v n="$MATCH" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }') us" "whole process life, start-up included"
  fig "$label RSS peak" "$(kb_mb "$hwm") MB" "VmHWM"
}

phase_rsyslog() {
  local version; version=$("$RSYSLOGD" -v 2>/dev/null | head -1 | awk '{ print $2 }' | tr -d ,)
  say "rsyslog $version: imfile -> filter -> omfile, plain and with a disk-assisted queue"
  rsyslog_run plain "rsyslog" ""
  rsyslog_run da "rsyslog DA-queue" ' queue.type="LinkedList" queue.filename="benchq" queue.saveOnShutdown="on"'
  RSYSLOG_VERSION=$version
}

# --- main -----------------------------------------------------------------

machine
START=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo "?")
say "stack in $STACK_DIR"
stack_up >"$STACK_DIR/stack.out" 2>&1 || { cat "$STACK_DIR/stack.out" >&2; die "the stack did not start"; }
cairnctl workspace create "$WS" --description "cairn-bench-edge" >/dev/null || die "workspace create failed"
start_node || die "the node did not come online (log: $STACK_DIR/logs/node-$NODE.log; --keep keeps it)"
say "node $NODE online (pid $NODE_PID, $EDGE_BIN)"

phase_binary
phase_idle
phase_load
phase_backlog
write_throughput_file "$(node_dir)/in/tput.log"
phase_throughput_mqtt
phase_throughput_file
phase_rsyslog
kill -0 "$NODE_PID" 2>/dev/null || { fig_failed "node alive at the end" "the node exited: $(tail -3 "$STACK_DIR/logs/node-$NODE.log")"; }

mode=$( ((QUICK)) && echo "quick run" || echo "full run")
printf '\ncairn-bench-edge (%s), %s, commit %s\n' "$mode" "$START" "$COMMIT"
printf 'machine:    %s\n' "$MACHINE"
printf 'node:       %s\n' "$EDGE_BIN"
printf 'peer:       rsyslogd %s (Debian package)\n' "${RSYSLOG_VERSION:-?}"
printf 'parameters: idle and load windows %s s; load 3 x generate %s records/s -> mqtt (QoS 1 through the node'"'"'s queue);\n' "$WINDOW" "$(thousands "$RATE")"
printf '            backlog %s records (file -> mqtt, link cut by iptables on the node port);\n' "$(thousands "$BACKLOG")"
printf '            throughput file %s lines of %s B, %s containing ERROR (file -> filter -> mqtt | file; rsyslog imfile -> filter -> omfile)\n\n' \
  "$(thousands "$LINES")" "${LINE_BYTES:-?}" "$(thousands "$MATCH")"
for i in "${!FIG_NAMES[@]}"; do
  printf '%-28s %20s   %s\n' "${FIG_NAMES[$i]}" "${FIG_VALUES[$i]}" "${FIG_NOTES[$i]}"
done
# print_mappings FILE TITLE: the largest lines of an rss_by_mapping file.
print_mappings() {
  [[ -s "$1" ]] || return 0
  printf '\n%s (smaps; MB of RSS, of it private):\n' "$2"
  head -12 "$1" | awk '{ printf "  %6.2f  %6.2f  %s\n", $1 * 1024 / 1e6, $2 * 1024 / 1e6, $3 }'
  awk 'NR > 12 { r += $1; p += $2; n++ } END { if (n) printf "  %6.2f  %6.2f  (%d more)\n", r * 1024 / 1e6, p * 1024 / 1e6, n }' "$1"
}
print_mappings "$STACK_DIR/idle-rss-by-mapping" "idle RSS by mapping"
print_mappings "$STACK_DIR/mqtt-rss-by-mapping" "RSS by mapping at the end of the mqtt throughput run"
for p in "${PROFILES[@]}"; do
  printf '\nprofile of the node, %s (perf cpu-clock, self time by library and symbol, >= 1.5 %%):\n' "$p"
  sed 's/^/  /' "$STACK_DIR/profile-$p.txt"
done
((PROFILE)) && printf '\n(--profile: the load and mqtt throughput figures include perf'"'"'s sampling overhead)\n'
exit $FAILED
