#!/bin/sh
# openbao-platform start script: decide whether this node may self-initialise, then start
# `bao server`. Only the designated node, only on empty storage, and only when EVERY peer
# answers "not initialised" over verified TLS may it add the initialize stanza. A peer that
# is initialised means a cluster exists: join it. A peer that cannot be reached means we
# cannot know: wait and ask again. This keeps a wiped node from forking the cluster
# (openbao/openbao#2274).
#
# Crash during bootstrap (docs/runbook-bootstrap.md). OpenBao's self-init is not atomic: a
# node killed after the barrier is initialised but before its init requests finished keeps
# storage that is initialised without auth methods (no root token exists, so it can never
# be administered), sealed for good, or marked "self-initialization failed" (bao then
# refuses to unseal it). So a bootstrap is journaled on the data volume: BOOTSTRAP_JOURNAL
# holds the attempt number from just before bao starts with the stanza until the node's own
# API answers (bao serves HTTP only after self-init returned successfully). A start that
# finds the journal knows the storage comes from a bootstrap that was never seen to finish.
# If a peer is initialised it had joined, which bao allows only after self-init finished:
# the journal is cleared and the node starts normally. Otherwise nothing can have used the
# storage (no one could log in to it before self-init finished): it is set aside (moved,
# never deleted) and the node bootstraps again, up to BAO_SELF_INIT_ATTEMPTS times; then it
# refuses to start bao, saying why and naming the runbook, and waits for an operator.
set -eu

CONFIG_DIR="${BAO_CONFIG_DIR:-/openbao/config}"
DATA_DIR="${BAO_DATA_DIR:-/openbao/data}"
CACERT="${BAO_SELF_INIT_CACERT:-/openbao/tls/ca.crt}"
BOOTSTRAP_NODE="${BAO_SELF_INIT_NODE:-}"
PEERS="${BAO_SELF_INIT_PEERS:-}"
PEER_WAIT="${BAO_SELF_INIT_PEER_WAIT:-5}"
MAX_ATTEMPTS="${BAO_SELF_INIT_ATTEMPTS:-3}"
# This node's own API, as "servername,url": by its pod name (the cert always carries the SAN
# "localhost") and over loopback (the listener binds 0.0.0.0; 127.0.0.1 is an IP SAN).
SELF="localhost,${BAO_API_ADDR:-https://127.0.0.1:8200} 127.0.0.1,https://127.0.0.1:8200"
BAO="${BAO_BINARY:-bao}"
BOOTSTRAP_JOURNAL="$DATA_DIR/bootstrap-pending"
SET_ASIDE="$DATA_DIR/bootstrap-failed"
RUNBOOK="docs/runbook-bootstrap.md"

log() { echo "openbao-start: $*" >&2; }

# Prints initialised | uninitialised | unreachable for one "servername,url" peer.
peer_state() {
  name=${1%%,*}
  url=${1#*,}
  if answer=$(BAO_ADDR="$url" BAO_CACERT="$CACERT" BAO_TLS_SERVER_NAME="$name" \
      BAO_CLIENT_TIMEOUT=3s "$BAO" read -field=initialized sys/init 2>/dev/null); then
    case "$answer" in
      true) echo initialised; return ;;
      false) echo uninitialised; return ;;
    esac
  fi
  echo unreachable
}

has_storage() { [ -e "$DATA_DIR/vault.db" ] || [ -e "$DATA_DIR/raft/raft.db" ]; }

# Succeeds when every peer answers "not initialised"; fails as soon as one is initialised;
# waits (and asks again) while any cannot be reached.
peers_uninitialised() {
  while :; do
    waiting=""
    for peer in $PEERS; do
      case "$(peer_state "$peer")" in
        initialised) initialised_peer=${peer%%,*}; return 1 ;;
        unreachable) waiting="$waiting ${peer%%,*}" ;;
      esac
    done
    [ -z "$waiting" ] && return 0
    log "cannot bootstrap yet, no answer from:$waiting (retrying in ${PEER_WAIT}s)"
    sleep "$PEER_WAIT"
  done
}

# The attempt number the journal holds (0 without a journal; unreadable counts as exhausted).
journal_attempts() {
  [ -e "$BOOTSTRAP_JOURNAL" ] || { echo 0; return; }
  n=$(cat "$BOOTSTRAP_JOURNAL" 2>/dev/null || true)
  case "$n" in
    '' | *[!0-9]*) echo "$MAX_ATTEMPTS" ;;
    *) echo "$n" ;;
  esac
}

# Moves the storage of interrupted attempt $1 out of the raft path (kept for the runbook).
set_aside() {
  dest="$SET_ASIDE/attempt-$1"
  mkdir -p "$dest"
  for f in vault.db raft node-id; do
    if [ -e "$DATA_DIR/$f" ]; then mv "$DATA_DIR/$f" "$dest/"; fi
  done
  log "bootstrap attempt $1 never finished self-initialisation: its storage is set aside in $dest" \
      "(no one could have used it) and this node bootstraps again"
}

# Never returns: bao is not started, so nothing is served; the reason is repeated in the log.
refuse() {
  while :; do
    log "REFUSING TO START: self-initialisation did not finish in $1 attempt(s) (storage of each kept in" \
        "$SET_ASIDE); fix the cause the earlier attempts logged, then follow $RUNBOOK"
    sleep 60
  done
}

# Succeeds when this node must bootstrap the cluster.
should_bootstrap() {
  if [ -z "$BOOTSTRAP_NODE" ] || [ "${BAO_K8S_POD_NAME:-}" != "$BOOTSTRAP_NODE" ]; then
    return 1
  fi
  attempts=$(journal_attempts)
  if [ "$attempts" -gt 0 ] && has_storage; then
    if ! peers_uninitialised; then
      log "peer $initialised_peer is initialised, so bootstrap attempt $attempts had finished (peers join only" \
          "after self-init): recorded; starting without self-init"
      rm -f "$BOOTSTRAP_JOURNAL"
      return 1
    fi
    set_aside "$attempts"
  elif has_storage; then
    log "storage exists in $DATA_DIR: starting without self-init"
    return 1
  elif ! peers_uninitialised; then
    log "peer $initialised_peer is initialised: joining the existing cluster, not bootstrapping"
    rm -f "$BOOTSTRAP_JOURNAL"
    return 1
  fi
  if [ "$attempts" -ge "$MAX_ATTEMPTS" ]; then
    refuse "$attempts"
  fi
  log "storage empty and no peer initialised: this node self-initialises the cluster (attempt $((attempts + 1)))"
  echo "$((attempts + 1))" > "$BOOTSTRAP_JOURNAL.tmp"
  mv "$BOOTSTRAP_JOURNAL.tmp" "$BOOTSTRAP_JOURNAL"
  return 0
}

# Succeeds while process $1 runs (an exited, not yet reaped process counts as gone).
alive() {
  if [ -r "/proc/$1/stat" ]; then
    read -r _ _ state _ < "/proc/$1/stat" 2>/dev/null || return 1
    case "$state" in Z | X) return 1 ;; esac
    return 0
  fi
  kill -0 "$1" 2>/dev/null
}

# Clears the journal once this node's own API answers "initialised": bao serves HTTP only
# after self-init returned successfully, never while its init requests run. Runs beside the
# bootstrapping bao (process $1) and ends with it.
record_completion() {
  while alive "$1"; do
    for api in $SELF; do
      if [ "$(peer_state "$api")" = initialised ]; then
        rm -f "$BOOTSTRAP_JOURNAL"
        log "self-initialisation finished: bootstrap recorded as complete"
        return 0
      fi
    done
    sleep 1
  done
}

if should_bootstrap; then
  # $$ is bao's PID once this shell execs it; the subshell exits at once, so nothing waits on it.
  (record_completion "$$" &)
  exec "$BAO" server -config="$CONFIG_DIR/server.json" -config="$CONFIG_DIR/initialize.json"
fi
exec "$BAO" server -config="$CONFIG_DIR/server.json"
