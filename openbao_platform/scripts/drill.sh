#!/bin/sh
# Restore drill: proves that the snapshot the fetch step left in DRILL_DIR (remote.sh candidate:
# its sha256 already matched the manifest) restores. In this pod only, on loopback:
#
#   1. start a throwaway single-node `bao server` (raft on an emptyDir, listener on
#      DRILL_ADDR = 127.0.0.1, which nothing outside this pod can reach) with the cluster's
#      static seal key, read-only from the unseal Secret;
#   2. `bao operator init -recovery-shares=0`: a throwaway root token for this empty node only;
#   3. `bao operator raft snapshot restore -force` with it: the node now holds the snapshot's
#      data (the throwaway token is gone with the old data), still unsealed by the same key;
#   4. checks: unsealed; raft applied index >= the manifest's raft index; a login with the
#      drill user (userpass, the DRILL_USERNAME / DRILL_PASSWORD_FILE Secret; its policy reads
#      the canary and nothing else) works against the RESTORED data, and the canary entry the
#      backup job wrote just before the snapshot holds the manifest's nonce and this snapshot's
#      name;
#   5. only then DRILL_DIR/verdict.json (result good) for the mark step (remote.sh mark).
#
# The pod never talks to the live OpenBao API (its NetworkPolicy allows DNS and the storage
# endpoint only; this container has no bucket credentials). Any failed check exits non-zero
# and writes no verdict: the snapshot is never marked good, the Job fails, the alert fires.
set -eu

DIR="${DRILL_DIR:-/drill}"
WORK="${DRILL_WORK_DIR:-/drill-work}"
ADDR="${DRILL_ADDR:-127.0.0.1}"
PORT="${DRILL_PORT:-8200}"
UNSEAL_DIR="${DRILL_UNSEAL_DIR:-/openbao/unseal}"
KEY_ID="${DRILL_KEY_ID:?DRILL_KEY_ID is required (the static seal key id)}"
PREVIOUS_KEY_ID="${DRILL_PREVIOUS_KEY_ID:-}"
CANARY_PATH="${DRILL_CANARY_PATH:?DRILL_CANARY_PATH is required}"
USERNAME="${DRILL_USERNAME:-backup-drill}"
PASSWORD_FILE="${DRILL_PASSWORD_FILE:?DRILL_PASSWORD_FILE is required}"
TIMEOUT="${DRILL_TIMEOUT_SECONDS:-300}"
BAO="${BAO_BINARY:-bao}"

log() { echo "openbao-drill: $*" >&2; }
fail() { log "FAILED: $*"; [ ! -f "$WORK/bao.log" ] || tail -n 15 "$WORK/bao.log" >&2; exit 1; }
# A JSON field of a flat one-line document (the manifest): string or number.
field() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" "$1"; }
now() { date +%s; }

snap=""
for f in "$DIR"/openbao-*.snap; do
  [ -e "$f" ] && snap="$f"
done
if [ -z "$snap" ]; then
  log "no snapshot in $DIR: the newest one is already marked good (see the fetch step), nothing to drill"
  exit 0
fi
name="${snap##*/}"
manifest="$snap.json"
rm -f "$DIR/verdict.json"
[ -s "$manifest" ] || fail "$name has no manifest next to it"
want_sum=$(field "$manifest" sha256)
want_index=$(field "$manifest" raft_index)
want_nonce=$(field "$manifest" canary_nonce)
[ "$(sha256sum "$snap" | cut -d' ' -f1)" = "$want_sum" ] || fail "$name does not match its manifest's sha256"
[ -n "$want_index" ] || fail "the manifest of $name has no raft_index"
[ -n "$want_nonce" ] || fail "the manifest of $name has no canary_nonce (taken by a backup job without the canary)"
[ -s "$PASSWORD_FILE" ] || fail "$PASSWORD_FILE is missing or empty (the drill credentials Secret)"

mkdir -p "$WORK/data"
rm -rf "${WORK:?}/data/"*
export HOME="$WORK" BAO_ADDR="http://$ADDR:$PORT"
unset BAO_TOKEN BAO_CACERT
previous=""
[ -z "$PREVIOUS_KEY_ID" ] || previous=", \"previous_key_id\": \"$PREVIOUS_KEY_ID\", \"previous_key\": \"file://$UNSEAL_DIR/$PREVIOUS_KEY_ID\""
# TLS off: the listener is on the pod's own loopback, which no other pod can reach.
cat > "$WORK/drill.json" <<EOF
{"api_addr": "http://$ADDR:$PORT", "cluster_addr": "https://$ADDR:$((PORT + 1))", "log_level": "warn",
 "listener": [{"tcp": {"address": "$ADDR:$PORT", "cluster_address": "$ADDR:$((PORT + 1))", "tls_disable": true}}],
 "storage": {"raft": {"path": "$WORK/data", "node_id": "restore-drill", "performance_multiplier": 1}},
 "seal": {"static": {"current_key_id": "$KEY_ID", "current_key": "file://$UNSEAL_DIR/$KEY_ID"$previous}}}
EOF

started=$(now)
deadline=$((started + TIMEOUT))
"$BAO" server -config="$WORK/drill.json" > "$WORK/bao.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# Polls "$@" until it succeeds; fails with $what after the deadline.
until_ok() {
  what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    kill -0 "$server" 2>/dev/null || fail "the throwaway server exited while waiting for $what"
    [ "$(now)" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for $what"
    sleep 1
  done
}
listening() { "$BAO" status >/dev/null 2>&1; [ $? -ne 1 ]; }  # 0 unsealed, 2 sealed, 1 unreachable
active() { "$BAO" read -field=is_self sys/leader | grep -qx true; }

until_ok "the throwaway server to listen on $BAO_ADDR" listening
init=$("$BAO" operator init -recovery-shares=0 -recovery-threshold=0 -format=json) \
  || fail "operator init of the throwaway node"
throwaway=$(printf '%s' "$init" | tr -d '\n ' | sed -n 's/.*"root_token":"\([^"]*\)".*/\1/p')
[ -n "$throwaway" ] || fail "operator init returned no root token"
until_ok "the throwaway node to become active" active
restore_started=$(now)
BAO_TOKEN="$throwaway" "$BAO" operator raft snapshot restore -force "$snap" \
  || fail "raft snapshot restore of $name"
# Restored once the throwaway token (in the replaced data) is refused; an unreachable node is not that.
replaced() {
  if out=$(BAO_TOKEN="$throwaway" "$BAO" token lookup 2>&1); then return 1; fi
  printf '%s' "$out" | grep -q "permission denied"
}
until_ok "the restored data to replace the throwaway node's" replaced

# 1. the drill user of the restored data can log in (the data is served)
login() { "$BAO" write -field=token "auth/userpass/login/$USERNAME" password=@"$PASSWORD_FILE"; }
until_ok "a login as $USERNAME on the restored data" login
# 2. unsealed, by the static key, with the snapshot's keyring
sealed=$("$BAO" status -format=json 2>/dev/null | tr -d '\n ' | sed -n 's/.*"sealed":\([a-z]*\).*/\1/p') || true
[ "$sealed" = "false" ] || fail "the restored node is not unsealed (sealed: ${sealed:-unknown})"
# 3. the raft index the snapshot was taken at
until_ok "the restored node to be active" active
index=$("$BAO" read -field=raft_applied_index sys/leader) || fail "reading sys/leader"
[ "$index" -ge "$want_index" ] || fail "restored raft applied index $index is below the manifest's $want_index"
# 4. the canary the backup job wrote just before this snapshot, read as the drill user
BAO_TOKEN=$(login) || fail "login as $USERNAME"
export BAO_TOKEN
canary=$("$BAO" read -format=json "$CANARY_PATH" | tr -d '\n ') || fail "reading the canary $CANARY_PATH as $USERNAME"
got_nonce=$(printf '%s' "$canary" | sed -n 's/.*"nonce":"\([^"]*\)".*/\1/p')
got_snapshot=$(printf '%s' "$canary" | sed -n 's/.*"snapshot":"\([^"]*\)".*/\1/p')
[ "$got_nonce" = "$want_nonce" ] || fail "canary nonce ${got_nonce:-<none>} is not the manifest's $want_nonce"
[ "$got_snapshot" = "$name" ] || fail "canary names snapshot ${got_snapshot:-<none>}, not $name"
done_at=$(now)

printf '{"name": "%s", "sha256": "%s", "raft_index": %s, "restored_raft_index": %s, "canary_nonce": "%s", "result": "good", "drilled_at": "%s", "restore_seconds": %s, "drill_seconds": %s}\n' \
  "$name" "$want_sum" "$want_index" "$index" "$got_nonce" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$((done_at - restore_started))" "$((done_at - started))" > "$DIR/.verdict.json"
mv "$DIR/.verdict.json" "$DIR/verdict.json"
log "$name restores: unsealed, raft index $index >= $want_index, canary $got_nonce read back as $USERNAME ($((done_at - started))s)"
