#!/bin/sh
# Object-storage copies of the verified Raft snapshots, with rclone (pinned image
# rclone/rclone; the remote is configured only by RCLONE_CONFIG_<REMOTE>_* environment
# variables: no rclone.conf; the access key is read from the credentials Secret mounted
# read-only into this container (exported below, in this process only), or comes from
# workload identity with env_auth).
#
#   remote.sh upload       (the CronJob's upload container; the default) the newest snapshot in
#                          BACKUP_DIR goes to <remote>:<bucket>/<prefix>/snapshots/<name> with a
#                          manifest <name>.json (sha256, size, snapshot time, raft index, canary
#                          nonce); the uploaded object is read back and its sha256 checked; then
#                          retention (keep the newest BACKUP_REMOTE_KEEP, and drop those older than
#                          BACKUP_REMOTE_KEEP_DAYS days when > 0), good/ markers included.
#   remote.sh candidate DIR  (the drill's fetch container) the newest snapshot that has a manifest,
#                          downloaded into DIR with its manifest, unless it is already marked good
#                          (then DIR stays empty: nothing to drill). A sha256 or size that does not
#                          match the manifest fails loudly (CORRUPT ...): it is never drilled nor
#                          marked.
#   remote.sh mark DIR     (the drill's mark container) DIR/verdict.json, written by drill.sh only
#                          after every check passed, becomes <prefix>/good/<name>.json once the
#                          object in the bucket still reads back with the verdict's sha256.
#   remote.sh fetch DIR    (restore, docs/runbook-restore.md) the newest snapshot marked good by a
#                          restore drill whose sha256 and size match its manifest and its marker,
#                          downloaded into DIR. BACKUP_REMOTE_ALLOW_UNVERIFIED=true (emergencies
#                          only: no drill ever restored it) takes the newest manifest-valid one.
#                          A corrupted or manifest-less object is reported and skipped, never used.
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
GOOD="$REMOTE:$BUCKET/$PREFIX/good"

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
  nonce=""
  [ ! -f "$snap.canary" ] || nonce=$(tr -d ' \n' < "$snap.canary")
  manifest="$WORK/$name.json"
  printf '{"name": "%s", "sha256": "%s", "size": %s, "snapshot_time": "%s", "raft_index": %s, "canary_nonce": "%s"}\n' \
    "$name" "$digest" "$bytes" "$stamp" "$index" "$nonce" > "$manifest"

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
    "$RCLONE" deletefile "$GOOD/$old.json" >/dev/null 2>&1 || true
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
      "$RCLONE" deletefile "$GOOD/$old.json" >/dev/null 2>&1 || true
      log "removed $old from $DEST (older than $KEEP_DAYS days)"
    done
  fi
}

# Downloads object $1 to file $2: 0 when it exists (rclone copyto of a missing S3 object can
# exit 0 having copied nothing, so the file itself is the answer).
get_small() {
  rm -f "$2"
  "$RCLONE" copyto "$1" "$2" >/dev/null 2>&1 || true
  [ -s "$2" ]
}

# Whether <name> has a good/ marker, downloaded to $WORK/<name>.good.json (1: none).
is_good() {
  get_small "$GOOD/$1.json" "$WORK/$1.good.json"
}

# Whether snapshot $1 has a manifest, downloaded to $WORK/$1.json (1, logged: an unfinished
# upload, which candidate and fetch skip).
has_manifest() {
  get_small "$DEST/$1.json" "$WORK/$1.json" && return 0
  log "skipping $1: no manifest (an unfinished upload)"
  return 1
}

# Downloads snapshot $1 into $2/.$1.partial and checks it against its manifest (already in
# $WORK/$1.json): 0 when sha256 and size match, 1 (file removed, CORRUPT logged) otherwise.
download_verified() {
  rc "download of $1" copyto "$DEST/$1" "$2/.$1.partial" >/dev/null
  want=$(field "$WORK/$1.json" sha256)
  got=$(sha256 "$2/.$1.partial")
  if [ -z "$want" ] || [ "$got" != "$want" ] || [ "$(size "$2/.$1.partial")" != "$(field "$WORK/$1.json" size)" ]; then
    log "CORRUPT $1 in bucket $BUCKET: sha256 $got does not match its manifest ($want)"
    rm -f "$2/.$1.partial"
    return 1
  fi
  return 0
}

candidate() {
  out_dir="$1"
  mkdir -p "$out_dir"
  list_remote
  # shellcheck disable=SC2013  # names are openbao-<timestamp>.snap: no blanks
  for name in $(sort -r "$LIST"); do
    has_manifest "$name" || continue
    if is_good "$name"; then
      log "newest snapshot $name is already marked good ($GOOD/$name.json): nothing to drill"
      return 0
    fi
    download_verified "$name" "$out_dir" \
      || fail "newest snapshot $name in bucket $BUCKET is corrupt: it is not drilled and never marked good"
    mv "$out_dir/.$name.partial" "$out_dir/$name"
    cp "$WORK/$name.json" "$out_dir/$name.json"
    log "fetched $name for the restore drill (sha256 $got, raft index $(field "$WORK/$name.json" raft_index))"
    printf '%s\n' "$out_dir/$name"
    return 0
  done
  fail "no snapshot with a manifest in $DEST to drill"
}

mark() {
  verdict="$1/verdict.json"
  [ -s "$verdict" ] || { log "no verdict in $1 (nothing was drilled): nothing to mark"; return 0; }
  name=$(field "$verdict" name)
  digest=$(field "$verdict" sha256)
  [ -n "$name" ] && [ -n "$digest" ] || fail "$verdict names no snapshot or sha256"
  [ "$(field "$verdict" result)" = "good" ] || fail "$verdict does not say good: $name is not marked"
  remote_sum=$(rc "read-back of $name" hashsum sha256 --download "$DEST/$name" | cut -d' ' -f1)
  [ "$remote_sum" = "$digest" ] \
    || fail "$name in bucket $BUCKET now reads back as sha256 $remote_sum, not the drilled $digest: not marked good"
  rc "marking $name good" copyto "$verdict" "$GOOD/$name.json" >/dev/null
  log "marked $name good ($GOOD/$name.json: restored, unsealed, raft index and canary checked)"
}

fetch() {
  out_dir="$1"
  mkdir -p "$out_dir"
  unverified="${BACKUP_REMOTE_ALLOW_UNVERIFIED:-false}"
  list_remote
  # shellcheck disable=SC2013  # names are openbao-<timestamp>.snap: no blanks
  for name in $(sort -r "$LIST"); do
    has_manifest "$name" || continue
    if is_good "$name"; then
      if [ "$(field "$WORK/$name.good.json" sha256)" != "$(field "$WORK/$name.json" sha256)" ]; then
        log "skipping $name: its good/ marker names another sha256 than its manifest"
        continue
      fi
    elif [ "$unverified" = "true" ]; then
      log "WARNING: $name was never restored by a drill (BACKUP_REMOTE_ALLOW_UNVERIFIED=true)"
    else
      log "skipping $name: not marked good by a restore drill (yet)"
      continue
    fi
    download_verified "$name" "$out_dir" || { log "skipped $name"; continue; }
    mv "$out_dir/.$name.partial" "$out_dir/$name"
    cp "$WORK/$name.json" "$out_dir/$name.json"
    log "fetched $name (sha256 $got, raft index $(field "$WORK/$name.json" raft_index))"
    printf '%s\n' "$out_dir/$name"
    return 0
  done
  if [ "$unverified" = "true" ]; then
    fail "no snapshot in $DEST matches its manifest"
  fi
  fail "no snapshot in $DEST is marked good by a restore drill and matches its manifest (emergency only: BACKUP_REMOTE_ALLOW_UNVERIFIED=true takes the newest unverified one)"
}

case "${1:-upload}" in
  upload) upload ;;
  candidate) candidate "${2:?usage: remote.sh candidate DIR}" ;;
  mark) mark "${2:?usage: remote.sh mark DIR}" ;;
  fetch) fetch "${2:?usage: remote.sh fetch DIR}" ;;
  *) fail "unknown command $1 (use upload, candidate DIR, mark DIR or fetch DIR)" ;;
esac
