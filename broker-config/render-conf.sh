#!/usr/bin/env bash
# render-conf.sh OUT — render broker-config/mosquitto.conf.template into OUT.
#
# Every @NAME@ placeholder in the template is replaced by the environment
# variable NAME. All of these must be set (non-empty):
#   CAIRN_BROKER_DATA_DIR          directory for mosquitto.db and the revocation list
#   CAIRN_BROKER_BIND              listen address, e.g. 127.0.0.1 or 0.0.0.0
#   CAIRN_BROKER_AUTH_PORT         TLS + username/password listener port
#   CAIRN_BROKER_NODE_PORT         mutual-TLS (node certificate) listener port
#   CAIRN_BROKER_CA_FILE           control-plane CA certificate (PEM)
#   CAIRN_BROKER_CERT_FILE         server certificate followed by the CA (PEM)
#   CAIRN_BROKER_KEY_FILE          server private key (PEM)
#   CAIRN_BROKER_PLUGIN            path of cairn_mosquitto_plugin.so
#   CAIRN_BROKER_CREDENTIALS_FILE  "svc:<name> <sha256-hex>" credentials file
#   CAIRN_BROKER_LOG_FILE          broker log file
# Optional:
#   CAIRN_BROKER_ACCESS_FILE       access snapshot written by cairn-registry
#                                  (default: $CAIRN_BROKER_DATA_DIR/access)
#   CAIRN_BROKER_LIMITS            plugin limits, "name=value" separated by
#                                  spaces, e.g. "node_health_per_second=2
#                                  max_message_bytes=65536" (names and
#                                  defaults: mosquitto.conf.template)
# The broker key file must not be readable by group or others: rendering is
# refused otherwise (chmod 600 it).
# Paths must be absolute (the broker may run from another directory). Values
# may not contain whitespace or newlines (Mosquitto options are one line, and
# a newline would inject options).
#
# OUT is written atomically (mode 0644: Mosquitto started as root reads it
# after dropping to user "mosquitto", as it does the files named in it).
# Exit status: 0 rendered, 1 bad environment, 2 usage.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
  echo "usage: $0 OUT" >&2
  exit 2
fi
out=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
template="$here/mosquitto.conf.template"
[[ -r "$template" ]] || { echo "render-conf.sh: cannot read $template" >&2; exit 1; }

if [[ -z "${CAIRN_BROKER_ACCESS_FILE-}" && -n "${CAIRN_BROKER_DATA_DIR-}" ]]; then
  CAIRN_BROKER_ACCESS_FILE=$CAIRN_BROKER_DATA_DIR/access
fi
vars=(CAIRN_BROKER_DATA_DIR CAIRN_BROKER_BIND CAIRN_BROKER_AUTH_PORT CAIRN_BROKER_NODE_PORT
      CAIRN_BROKER_CA_FILE CAIRN_BROKER_CERT_FILE CAIRN_BROKER_KEY_FILE CAIRN_BROKER_PLUGIN
      CAIRN_BROKER_CREDENTIALS_FILE CAIRN_BROKER_LOG_FILE CAIRN_BROKER_ACCESS_FILE)
paths=(CAIRN_BROKER_DATA_DIR CAIRN_BROKER_CA_FILE CAIRN_BROKER_CERT_FILE CAIRN_BROKER_KEY_FILE
       CAIRN_BROKER_PLUGIN CAIRN_BROKER_CREDENTIALS_FILE CAIRN_BROKER_LOG_FILE CAIRN_BROKER_ACCESS_FILE)

errors=()
missing=()
for v in "${vars[@]}"; do
  val=${!v-}
  if [[ -z "$val" ]]; then
    missing+=("$v")
  elif [[ "$val" =~ [[:space:]] ]]; then
    errors+=("$v must not contain whitespace or newlines")
  fi
done
if ((${#missing[@]})); then
  errors+=("missing environment variable(s): ${missing[*]}")
fi
for v in "${paths[@]}"; do
  val=${!v-}
  if [[ -n "$val" && "$val" != /* ]]; then
    errors+=("$v must be an absolute path (got '$val')")
  fi
done
for v in CAIRN_BROKER_AUTH_PORT CAIRN_BROKER_NODE_PORT; do
  val=${!v-}
  if [[ -n "$val" ]] && ! [[ "$val" =~ ^[0-9]{1,5}$ && "$val" -ge 1 && "$val" -le 65535 ]]; then
    errors+=("$v must be a port number 1-65535 (got '$val')")
  fi
done
if [[ -n "${CAIRN_BROKER_AUTH_PORT-}" && "${CAIRN_BROKER_AUTH_PORT-}" == "${CAIRN_BROKER_NODE_PORT-}" ]]; then
  errors+=("CAIRN_BROKER_AUTH_PORT and CAIRN_BROKER_NODE_PORT must differ")
fi
key=${CAIRN_BROKER_KEY_FILE-}
if [[ -n "$key" && -e "$key" ]]; then
  mode=$(stat -L -c '%a' "$key")
  if (((8#$mode & 8#077) != 0)); then
    errors+=("broker key file $key has mode $mode: it is readable by group or others; run: chmod 600 '$key' (and keep it in a 0700 directory)")
  fi
fi
CAIRN_BROKER_LIMITS_LINES=
for kv in ${CAIRN_BROKER_LIMITS-}; do
  if [[ "$kv" =~ ^([a-z_]+)=([0-9.]+)$ ]]; then
    CAIRN_BROKER_LIMITS_LINES+="plugin_opt_${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"$'\n'
  else
    errors+=("CAIRN_BROKER_LIMITS: '$kv' is not name=number")
  fi
done
if ((${#errors[@]})); then
  printf 'render-conf.sh: %s\n' "${errors[@]}" >&2
  exit 1
fi

# ${x//pat/rep} with the replacement quoted: no '&' or backslash processing.
shopt -u patsub_replacement 2>/dev/null || true
content=$(<"$template")
for v in "${vars[@]}"; do
  content=${content//"@$v@"/"${!v}"}
done
content=${content//"@CAIRN_BROKER_LIMITS@"/"${CAIRN_BROKER_LIMITS_LINES%$'\n'}"}
if [[ "$content" =~ @CAIRN_[A-Z_]*@ ]]; then
  echo "render-conf.sh: template has an unknown placeholder: ${BASH_REMATCH[0]}" >&2
  exit 1
fi

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
printf '%s\n' "$content" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
