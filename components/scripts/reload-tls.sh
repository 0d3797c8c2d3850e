#!/bin/sh
# TLS reload sidecar. The kubelet swaps a renewed certificate into the Secret volume
# atomically; OpenBao re-reads tls_cert_file/tls_key_file only on SIGHUP (in milliseconds,
# with no failed requests). This watches the certificate and sends SIGHUP to the server in
# the shared process namespace (the pod sets shareProcessNamespace: true) when it changes.
set -eu

CERT="${BAO_TLS_CERT:-/openbao/tls/tls.crt}"
MATCH="${BAO_SERVER_MATCH:-server -config=/openbao/config/server.json}"
INTERVAL="${RELOAD_INTERVAL_SECONDS:-10}"

log() { echo "openbao-tls-reload: $*" >&2; }

fingerprint() { cksum < "$CERT" 2>/dev/null || echo missing; }

# PIDs whose command line contains $MATCH (the OpenBao server, not this script).
server_pids() {
  for dir in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' < "$dir/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      *"$MATCH"*) echo "${dir#/proc/}" ;;
    esac
  done
}

last=$(fingerprint)
log "watching $CERT every ${INTERVAL}s"
while :; do
  sleep "$INTERVAL"
  now=$(fingerprint)
  [ "$now" = "$last" ] && continue
  pids=$(server_pids)
  if [ -z "$pids" ]; then
    log "certificate changed but no OpenBao server process found; retrying"
    continue
  fi
  for pid in $pids; do
    kill -HUP "$pid" && log "certificate changed: sent SIGHUP to OpenBao (pid $pid)"
  done
  last=$now
done
