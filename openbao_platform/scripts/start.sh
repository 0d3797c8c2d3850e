#!/bin/sh
# openbao-platform start script: decide whether this node may self-initialise, then exec
# `bao server`. Only the designated node, only on empty storage, and only when EVERY peer
# answers "not initialised" over verified TLS may it add the initialize stanza. A peer that
# is initialised means a cluster exists: join it. A peer that cannot be reached means we
# cannot know: wait and ask again. This keeps a wiped node from forking the cluster
# (openbao/openbao#2274).
set -eu

CONFIG_DIR="${BAO_CONFIG_DIR:-/openbao/config}"
DATA_DIR="${BAO_DATA_DIR:-/openbao/data}"
CACERT="${BAO_SELF_INIT_CACERT:-/openbao/tls/ca.crt}"
BOOTSTRAP_NODE="${BAO_SELF_INIT_NODE:-}"
PEERS="${BAO_SELF_INIT_PEERS:-}"
PEER_WAIT="${BAO_SELF_INIT_PEER_WAIT:-5}"
BAO="${BAO_BINARY:-bao}"

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

# Succeeds when this node must bootstrap the cluster.
should_bootstrap() {
  if [ -z "$BOOTSTRAP_NODE" ] || [ "${BAO_K8S_POD_NAME:-}" != "$BOOTSTRAP_NODE" ]; then
    return 1
  fi
  if [ -e "$DATA_DIR/vault.db" ] || [ -e "$DATA_DIR/raft/raft.db" ]; then
    log "storage exists in $DATA_DIR: starting without self-init"
    return 1
  fi
  while :; do
    waiting=""
    for peer in $PEERS; do
      case "$(peer_state "$peer")" in
        initialised)
          log "peer ${peer%%,*} is initialised: joining the existing cluster, not bootstrapping"
          return 1 ;;
        unreachable) waiting="$waiting ${peer%%,*}" ;;
      esac
    done
    if [ -z "$waiting" ]; then
      log "storage empty and no peer initialised: this node self-initialises the cluster"
      return 0
    fi
    log "cannot bootstrap yet, no answer from:$waiting (retrying in ${PEER_WAIT}s)"
    sleep "$PEER_WAIT"
  done
}

if should_bootstrap; then
  exec "$BAO" server -config="$CONFIG_DIR/server.json" -config="$CONFIG_DIR/initialize.json"
fi
exec "$BAO" server -config="$CONFIG_DIR/server.json"
