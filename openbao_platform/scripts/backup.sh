#!/bin/sh
# Scheduled Raft snapshot. Logs in with the `backup` kubernetes auth role (its policy can only
# read sys/storage/raft/snapshot), saves a timestamped snapshot, verifies it (a snapshot is a
# gzipped tar whose SHA256SUMS covers meta.json and state.bin), keeps the newest N, and
# revokes its token. Any failure exits non-zero so the Job fails and the alert fires.
# BAO_ADDR and BAO_CACERT (and BAO_TLS_SERVER_NAME if needed) come from the environment.
set -eu

DIR="${BACKUP_DIR:-/backup}"
KEEP="${BACKUP_KEEP:-28}"
ROLE="${BACKUP_ROLE:-backup}"
JWT_FILE="${BACKUP_JWT_FILE:-/var/run/secrets/openbao/token}"
AUTH_PATH="${BACKUP_AUTH_PATH:-auth/kubernetes/login}"
BAO="${BAO_BINARY:-bao}"

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
rm -f "$DIR"/.openbao-*.partial

BAO_TOKEN=$("$BAO" write -field=token "$AUTH_PATH" role="$ROLE" jwt=@"$JWT_FILE") \
  || fail "login to $AUTH_PATH with role $ROLE"
export BAO_TOKEN
trap '"$BAO" token revoke -self >/dev/null 2>&1 || true' EXIT

name="openbao-$(date -u +%Y%m%dT%H%M%SZ).snap"
partial="$DIR/.$name.partial"
if ! "$BAO" operator raft snapshot save "$partial"; then
  rm -f "$partial"
  fail "snapshot save"
fi
if ! verify "$partial"; then
  rm -f "$partial"
  fail "snapshot $name is incomplete or its checksums do not match"
fi
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
  rm -f "$f"
  log "removed ${f##*/} (keeping the newest $KEEP)"
  excess=$((excess - 1))
done
