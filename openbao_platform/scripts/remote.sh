#!/bin/sh
# Object-storage copies of the verified Raft snapshots, with rclone (pinned image
# rclone/rclone; the remote is configured only by RCLONE_CONFIG_<REMOTE>_* environment
# variables: no rclone.conf; the access key is read from the credentials Secret mounted
# read-only into this container (exported below, in this process only), or comes from
# workload identity with env_auth).
#
#   remote.sh upload       (the CronJob's upload container; the default) the newest snapshot in
#                          BACKUP_DIR goes to <remote>:<bucket>/<prefix>/snapshots/<name> with a
#                          manifest <name>.json (sha256, size, snapshot time, raft index); the
#                          uploaded object is read back and its sha256 checked; then retention
#                          (keep the newest BACKUP_REMOTE_KEEP, and drop those older than
#                          BACKUP_REMOTE_KEEP_DAYS days when > 0).
#   remote.sh fetch DIR    (restore, docs/runbook-restore.md) the newest snapshot whose sha256
#                          and size match its manifest, downloaded into DIR; a corrupted or
#                          manifest-less object is reported and skipped, never used.
# Any failure exits non-zero with a line naming the bucket and rclone's error.
set -eu

DIR="${BACKUP_DIR:-/backup}"
REMOTE="${BACKUP_REMOTE_NAME:-backup}"
BUCKET="${BACKUP_REMOTE_BUCKET:?BACKUP_REMOTE_BUCKET is required}"
PREFIX="${BACKUP_REMOTE_PREFIX:-openbao}"
KEEP="${BACKUP_REMOTE_KEEP:-56}"
KEEP_DAYS="${BACKUP_REMOTE_KEEP_DAYS:-0}"
WORK="${BACKUP_WORK_DIR:-/tmp}"
RCLONE="${RCLONE_BINARY:-rclone}"
DEST="$REMOTE:$BUCKET/$PREFIX/snapshots"

# An access key from the mounted Secret (never in the pod spec's env, never in a file rclone
# writes): exported to rclone as RCLONE_CONFIG_<REMOTE>_ACCESS_KEY_ID / _SECRET_ACCESS_KEY.
if [ -n "${BACKUP_REMOTE_CREDENTIALS_DIR:-}" ]; then
  upper=$(printf '%s' "$REMOTE" | tr '[:lower:]' '[:upper:]')
  for key in access-key-id secret-access-key; do
    [ -s "$BACKUP_REMOTE_CREDENTIALS_DIR/$key" ] || { echo "openbao-backup-remote: FAILED: $BACKUP_REMOTE_CREDENTIALS_DIR/$key is missing or empty (the credentials Secret needs keys access-key-id and secret-access-key)" >&2; exit 1; }
  done
  export "RCLONE_CONFIG_${upper}_ACCESS_KEY_ID=$(cat "$BACKUP_REMOTE_CREDENTIALS_DIR/access-key-id")"
  export "RCLONE_CONFIG_${upper}_SECRET_ACCESS_KEY=$(cat "$BACKUP_REMOTE_CREDENTIALS_DIR/secret-access-key")"
fi

log() { echo "openbao-backup-remote: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# rclone with its output kept; on failure: the bucket, the step and rclone's last lines.
rc() {
  step="$1"
  shift
  if ! out=$("$RCLONE" "$@" 2>&1); then
    fail "$step (bucket $BUCKET, $DEST): $(printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 3 | tr '\n' ' ')"
  fi
  printf '%s' "$out"
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }
size() { wc -c < "$1" | tr -d ' '; }
# A JSON field of the manifest (flat, one line, written below): string or number.
field() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" "$1"; }

# Snapshot names in the bucket, oldest first (they sort by their UTC timestamp), into $LIST.
# Called directly (not in a command substitution) so that a failing listing exits the job.
LIST="$WORK/.remote-snapshots"
list_remote() {
  rc "listing" lsf --files-only --include 'openbao-*.snap' "$@" "$DEST" > "$LIST.raw"
  sort "$LIST.raw" > "$LIST"
}

upload() {
  snap=""
  for f in "$DIR"/openbao-*.snap; do
    [ -e "$f" ] && snap="$f"
  done
  [ -n "$snap" ] || fail "no snapshot in $DIR to upload (did the snapshot step run?)"
  name="${snap##*/}"
  digest=$(sha256 "$snap")
  bytes=$(size "$snap")
  stamp=$(printf '%s' "$name" | sed -n 's/^openbao-\([0-9]\{8\}T[0-9]\{6\}Z\)\.snap$/\1/p')
  index=$(tar -xzOf "$snap" meta.json | sed -n 's/.*"Index": *\([0-9]*\).*/\1/p')
  [ -n "$index" ] || fail "$name has no raft index in its meta.json"
  manifest="$WORK/$name.json"
  printf '{"name": "%s", "sha256": "%s", "size": %s, "snapshot_time": "%s", "raft_index": %s}\n' \
    "$name" "$digest" "$bytes" "$stamp" "$index" > "$manifest"

  rc "upload of $name" copyto "$snap" "$DEST/$name" >/dev/null
  # read it back: what is in the bucket is what was verified
  remote_sum=$(rc "read-back of $name" hashsum sha256 --download "$DEST/$name" | cut -d' ' -f1)
  [ "$remote_sum" = "$digest" ] || fail "uploaded $name reads back as sha256 $remote_sum, not $digest (bucket $BUCKET)"
  # the manifest last: an object without one is an unfinished upload, never restored
  rc "upload of the manifest of $name" copyto "$manifest" "$DEST/$name.json" >/dev/null
  log "uploaded $name ($bytes bytes, sha256 $digest, raft index $index) to $DEST"

  list_remote
  total=$(grep -c . "$LIST" || true)
  excess=$((total - KEEP))
  # shellcheck disable=SC2013  # names are openbao-<timestamp>.snap: no blanks
  for old in $(cat "$LIST"); do
    [ "$excess" -gt 0 ] || break
    [ "$old" = "$name" ] && break
    rc "removing $old" deletefile "$DEST/$old" >/dev/null
    "$RCLONE" deletefile "$DEST/$old.json" >/dev/null 2>&1 || true
    log "removed $old from $DEST (keeping the newest $KEEP)"
    excess=$((excess - 1))
  done
  if [ "$KEEP_DAYS" -gt 0 ]; then
    list_remote --min-age "${KEEP_DAYS}d"
    # shellcheck disable=SC2013  # names are openbao-<timestamp>.snap: no blanks
    for old in $(cat "$LIST"); do
      [ "$old" = "$name" ] && continue
      rc "removing $old" deletefile "$DEST/$old" >/dev/null
      "$RCLONE" deletefile "$DEST/$old.json" >/dev/null 2>&1 || true
      log "removed $old from $DEST (older than $KEEP_DAYS days)"
    done
  fi
}

fetch() {
  out_dir="$1"
  mkdir -p "$out_dir"
  list_remote
  # shellcheck disable=SC2013  # names are openbao-<timestamp>.snap: no blanks
  for name in $(sort -r "$LIST"); do
    manifest="$WORK/$name.json"
    if ! "$RCLONE" copyto "$DEST/$name.json" "$manifest" >/dev/null 2>&1; then
      log "skipping $name: no manifest (an unfinished upload)"
      continue
    fi
    rc "download of $name" copyto "$DEST/$name" "$out_dir/.$name.partial" >/dev/null
    want=$(field "$manifest" sha256)
    got=$(sha256 "$out_dir/.$name.partial")
    if [ "$got" != "$want" ] || [ "$(size "$out_dir/.$name.partial")" != "$(field "$manifest" size)" ]; then
      log "CORRUPT $name in bucket $BUCKET: sha256 $got does not match its manifest ($want); skipped"
      rm -f "$out_dir/.$name.partial"
      continue
    fi
    mv "$out_dir/.$name.partial" "$out_dir/$name"
    cp "$manifest" "$out_dir/$name.json"
    log "fetched $name (sha256 $got, raft index $(field "$manifest" raft_index))"
    printf '%s\n' "$out_dir/$name"
    return 0
  done
  fail "no snapshot in $DEST matches its manifest"
}

case "${1:-upload}" in
  upload) upload ;;
  fetch) fetch "${2:?usage: remote.sh fetch DIR}" ;;
  *) fail "unknown command $1 (use upload or fetch DIR)" ;;
esac
