#!/bin/sh
# Scheduled Raft snapshot. Logs in with the `backup` kubernetes auth role (its policy can only
# read sys/storage/raft/snapshot and write the canary entry), writes the canary (a random nonce
# and the snapshot's name, at BACKUP_CANARY_PATH) just before the snapshot so that the restore
# drill can prove the snapshot holds it, saves a timestamped snapshot, verifies it (a snapshot
# is a gzipped tar whose SHA256SUMS covers meta.json and state.bin), keeps the newest N, and
# revokes its token. The nonce is not secret: it goes to <snapshot>.canary next to the snapshot
# and from there into the bucket's manifest. Any failure exits non-zero so the Job fails and the
# alert fires.
# BAO_ADDR and BAO_CACERT (and BAO_TLS_SERVER_NAME if needed) come from the environment.
set -eu

DIR="${BACKUP_DIR:-/backup}"
KEEP="${BACKUP_KEEP:-28}"
ROLE="${BACKUP_ROLE:-backup}"
JWT_FILE="${BACKUP_JWT_FILE:-/var/run/secrets/openbao/token}"
AUTH_PATH="${BACKUP_AUTH_PATH:-auth/kubernetes/login}"
BAO="${BAO_BINARY:-bao}"
CANARY_PATH="${BACKUP_CANARY_PATH:-}"

log() { echo "openbao-backup: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# Succeeds when $1 is a complete snapshot archive whose checksums match.
verify() {
  work="$DIR/.verify"
  rm -rf "$work" && mkdir -p "$work"
  ok=1
  if [ -s "$1" ] && tar -xzf "$1" -C "$work" && [ -f "$work/SHA256SUMS" ] && [ -f "$work/state.bin" ] \
      && (cd "$work" && sha256sum -c SHA256SUMS >/dev/null); then
    ok=0
  fi
  rm -rf "$work"
  return "$ok"
}

[ -d "$DIR" ] || fail "backup directory $DIR does not exist"
rm -f "$DIR"/.openbao-*.partial "$DIR"/.openbao-*.canary

BAO_TOKEN=$("$BAO" write -field=token "$AUTH_PATH" role="$ROLE" jwt=@"$JWT_FILE") \
  || fail "login to $AUTH_PATH with role $ROLE"
export BAO_TOKEN
trap '"$BAO" token revoke -self >/dev/null 2>&1 || true' EXIT

name="openbao-$(date -u +%Y%m%dT%H%M%SZ).snap"
partial="$DIR/.$name.partial"
if [ -n "$CANARY_PATH" ]; then
  nonce=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  printf '{"data": {"nonce": "%s", "snapshot": "%s"}}' "$nonce" "$name" | "$BAO" write "$CANARY_PATH" - >/dev/null \
    || fail "canary write to $CANARY_PATH (the backup policy needs create/update on it: docs/runbook-backup.md)"
  printf '%s\n' "$nonce" > "$DIR/.$name.canary"
fi
if ! "$BAO" operator raft snapshot save "$partial"; then
  rm -f "$partial" "$DIR/.$name.canary"
  fail "snapshot save"
fi
if ! verify "$partial"; then
  rm -f "$partial" "$DIR/.$name.canary"
  fail "snapshot $name is incomplete or its checksums do not match"
fi
[ -z "$CANARY_PATH" ] || mv "$DIR/.$name.canary" "$DIR/$name.canary"
mv "$partial" "$DIR/$name"
log "saved $name ($(wc -c < "$DIR/$name") bytes)"

# Names sort by their UTC timestamp, and globs expand sorted: the oldest come first.
total=0
for f in "$DIR"/openbao-*.snap; do
  [ -e "$f" ] && total=$((total + 1))
done
excess=$((total - KEEP))
for f in "$DIR"/openbao-*.snap; do
  [ "$excess" -gt 0 ] || break
  rm -f "$f" "$f.canary"
  log "removed ${f##*/} (keeping the newest $KEEP)"
  excess=$((excess - 1))
done
