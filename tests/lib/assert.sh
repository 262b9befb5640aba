# shellcheck shell=bash
# assert.sh — a tiny assertion library for the shell-driven integration and
# end-to-end tests. Each check prints ok/FAIL; t_finish prints
# "N passed, M failed" and returns non-zero if anything failed.
T_PASSED=0
T_FAILED=0

t_pass() { T_PASSED=$((T_PASSED + 1)); printf '  ok    %s\n' "$1"; }
t_fail() { T_FAILED=$((T_FAILED + 1)); printf '  FAIL  %s\n' "$1"; [[ -n "${2:-}" ]] && printf '        %s\n' "$2"; return 0; }

# check "description" CMD...: passes if CMD exits 0.
check() {
  local what=$1; shift
  local out
  if out=$("$@" 2>&1); then t_pass "$what"; else t_fail "$what" "$(printf '%s' "$out" | tail -5)"; fi
}

# check_fails "description" PATTERN CMD...: passes if CMD fails and its
# output matches the extended regex PATTERN.
check_fails() {
  local what=$1 pattern=$2; shift 2
  local out
  if out=$("$@" 2>&1); then
    t_fail "$what" "expected failure, got success: $out"
  elif grep -Eq -- "$pattern" <<<"$out"; then
    t_pass "$what"
  else
    t_fail "$what" "output did not match /$pattern/: $out"
  fi
}

# eventually "description" TIMEOUT_S CMD...: passes once CMD succeeds.
eventually() {
  local what=$1 timeout=$2; shift 2
  if wait_until "$timeout" "$@"; then t_pass "$what"; else t_fail "$what" "not true within ${timeout}s: $*"; fi
}

t_section() { printf '\n%s\n' "$*"; }

t_finish() {
  printf '\n%d passed, %d failed\n' "$T_PASSED" "$T_FAILED"
  ((T_FAILED == 0))
}
