#!/usr/bin/env bash
# check_needed.sh BINARY ALLOWED_REGEX: fails, naming them, if BINARY needs a
# shared library (ELF DT_NEEDED) whose name does not match ALLOWED_REGEX.
# Used by the test that keeps cairn-edge static but for glibc
# (docs/design/edge-footprint.md).
set -euo pipefail
needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[[ -n "$needed" ]] || { echo "no NEEDED entries read from $1"; exit 1; }
extra=$(grep -vxE "$2" <<<"$needed" || true)
if [[ -n "$extra" ]]; then
  echo "$1 needs shared libraries beyond glibc: $(echo $extra)"
  exit 1
fi
echo "$1 needs only: $(echo $needed)"
