#!/bin/sh
# Reconcile OpenBao's secrets engines, ACL policies and kubernetes auth roles with the desired
# state mounted from a ConfigMap (one file per object, nothing secret):
#   mount.<name>        a secrets engine at apps/<name>/: key=value lines (type, tuning)
#   policy.<name>.hcl   an ACL policy, stored verbatim
#   role.<name>         a kubernetes auth role: key=value lines, lists comma-separated
# Semantics:
#   1. validate the whole desired state offline before any write (names inside the managed
#      prefixes, every policy parses with `bao policy fmt`, every role's policies are declared,
#      no wildcard binding, only known role keys); any problem: exit 1, nothing written.
#   2. log in with the kubernetes auth role RECONCILE_ROLE (its policy allows only the managed
#      prefixes and the ownership record, never the admin policy).
#      With nothing declared and no such role (a cluster initialised before the reconciler
#      existed), there is nothing to apply: it says so and succeeds.
#   3. read the ownership record (KV v2 entry RECONCILE_OWNED_PATH of mount RECONCILE_KV_MOUNT:
#      fields `mounts`, `policies` and `roles`, space-separated). A declared object that exists
#      but is not owned (made by hand) is refused before any write, and so is a declared mount
#      whose type differs from the one mounted (changing it would mean disabling it).
#   4. create/update what is declared (mounts, then policies, then roles), delete what is owned
#      and no longer declared (roles before policies), record ownership; log every object as
#      created / updated / deleted / unchanged. Mounts are never disabled (that deletes their
#      data; the reconciler's policy cannot): one no longer declared is logged as retained and
#      stays owned. Nothing else is ever touched.
# BAO_ADDR and BAO_CACERT (and BAO_TLS_SERVER_NAME if needed) come from the environment.
set -eu

DIR="${RECONCILE_DIR:-/config}"
ROLE="${RECONCILE_ROLE:-reconciler}"
JWT_FILE="${RECONCILE_JWT_FILE:-/var/run/secrets/openbao/token}"
AUTH_MOUNT="${RECONCILE_AUTH_MOUNT:-kubernetes}"
KV_MOUNT="${RECONCILE_KV_MOUNT:-secret}"
OWNED="${RECONCILE_OWNED_PATH:-openbao-platform/reconciler}"
BAO="${BAO_BINARY:-bao}"
ROLE_KEYS="bound_service_account_names bound_service_account_namespaces token_policies token_ttl token_max_ttl"
MOUNT_KEYS="type description default_lease_ttl max_lease_ttl max_versions cas_required"
TUNE_KEYS="description default_lease_ttl max_lease_ttl"
KV_CONFIG_KEYS="max_versions cas_required"
MOUNT_PREFIX="apps"
BOOTSTRAP_HINT="run the one-time bootstrap in docs/tenants.md, section 4"

log() { echo "openbao-reconcile: $*"; }
fail() { echo "openbao-reconcile: FAILED: $*" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
  rm -rf "$work"
  if [ -n "${BAO_TOKEN:-}" ]; then "$BAO" token revoke -self >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# contains "<space-separated list>" word
contains() {
  case " $1 " in *" $2 "*) return 0 ;; esac
  return 1
}

# words "<list>": the list with single spaces (ConfigMap keys hold no glob characters).
words() {
  # shellcheck disable=SC2086 # split on purpose
  set -- $1
  echo "$*"
}

# The value of key $2 in role or mount file $1 (empty when absent).
role_value() {
  sed -n "s/^$2=//p" "$1" | head -n 1
}

# ---- 1. the desired state, validated offline -------------------------------------------
[ -d "$DIR" ] || fail "desired-state directory $DIR does not exist"
want_mounts=""
want_policies=""
want_roles=""
problems=0
problem() { echo "openbao-reconcile: invalid desired state: $*" >&2; problems=$((problems + 1)); }

for f in "$DIR"/mount.*; do
  [ -e "$f" ] || continue
  name=${f##*/mount.}
  case "$name" in
    ''|-*|*[!a-z0-9-]*) problem "mount $name: not a mount name (lower-case letters, digits and '-')" ;;
  esac
  type=$(role_value "$f" type)
  case "$type" in
    kv-v2|pki|transit) ;;
    *) problem "mount $name: type '$type' is not kv-v2, pki or transit" ;;
  esac
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] || continue
    key=${line%%=*}
    contains "$MOUNT_KEYS" "$key" || problem "mount $name: unknown key '$key' (known: $MOUNT_KEYS)"
    if contains "$KV_CONFIG_KEYS" "$key" && [ "$type" != kv-v2 ]; then
      problem "mount $name: $key applies to kv-v2 mounts only"
    fi
  done < "$f"
  want_mounts="$want_mounts $name"
done

for f in "$DIR"/policy.*.hcl; do
  [ -e "$f" ] || continue
  name=${f##*/policy.}
  name=${name%.hcl}
  case "$name" in
    tenant-*|shared-*) ;;
    *) problem "policy $name: outside the managed prefixes tenant-* and shared-*" ;;
  esac
  cp "$f" "$work/fmt.hcl"
  if ! "$BAO" policy fmt "$work/fmt.hcl" >"$work/fmt.out" 2>&1; then
    problem "policy $name: $(tr '\n' ' ' < "$work/fmt.out")"
  fi
  want_policies="$want_policies $name"
done

for f in "$DIR"/role.*; do
  [ -e "$f" ] || continue
  name=${f##*/role.}
  case "$name" in
    tenant-*) ;;
    *) problem "role $name: outside the managed prefix tenant-*" ;;
  esac
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] || continue
    key=${line%%=*}
    contains "$ROLE_KEYS" "$key" || problem "role $name: unknown key '$key' (known: $ROLE_KEYS)"
  done < "$f"
  for key in bound_service_account_names bound_service_account_namespaces token_policies; do
    value=$(role_value "$f" "$key")
    [ -n "$value" ] || problem "role $name: $key is empty"
    case ",$value," in *",*,"*|*"*"*) problem "role $name: $key binds '*'" ;; esac
  done
  for p in $(role_value "$f" token_policies | tr ',' ' '); do
    contains "$want_policies" "$p" || problem "role $name: policy $p is not in the desired state"
  done
  want_roles="$want_roles $name"
done
[ "$problems" -eq 0 ] || fail "$problems problem(s) in the desired state; nothing was changed"

# ---- 2. log in under the reconciler's own role -------------------------------------------
if ! BAO_TOKEN=$("$BAO" write -field=token "auth/$AUTH_MOUNT/login" role="$ROLE" jwt=@"$JWT_FILE" 2>"$work/login.err"); then
  if [ -z "$want_mounts$want_policies$want_roles" ] && grep -q "invalid role name" "$work/login.err"; then
    # Nothing declared, and the role never existed, so nothing can be owned: nothing to do.
    log "nothing declared and no $ROLE role (a cluster initialised before the reconciler): nothing to apply; to declare tenants, policies or secretEngines, $BOOTSTRAP_HINT"
    log "done: 0 created, 0 updated, 0 deleted, 0 unchanged, 0 retained"
    exit 0
  fi
  fail "login to auth/$AUTH_MOUNT/login with role $ROLE: $(tr '\n' ' ' < "$work/login.err")(a cluster initialised before the reconciler existed has no such role: $BOOTSTRAP_HINT)"
fi
export BAO_TOKEN

# ---- 3. ownership, and objects that exist but are not ours ---------------------------------
# read_owned FIELD: the field of the ownership record; empty when there is no record yet.
read_owned() {
  if "$BAO" kv get -mount="$KV_MOUNT" -field="$1" "$OWNED" >"$work/owned" 2>"$work/owned.err"; then
    cat "$work/owned"
  elif grep -q "No value found\|not present" "$work/owned.err"; then
    :  # no record yet, or a record from before this field existed
  else
    fail "reading the ownership record $KV_MOUNT/$OWNED: $(tr '\n' ' ' < "$work/owned.err")"
  fi
}
owned_mounts=$(read_owned mounts)
owned_policies=$(read_owned policies)
owned_roles=$(read_owned roles)

# exists KIND NAME: 0 when the object exists, 1 when it does not; fails on any other error.
# For a mount, $work/cur holds its type as declared (kv-v2, pki, transit or what it really is).
exists() {
  case "$1" in
    policy) "$BAO" policy read "$2" >"$work/cur" 2>"$work/cur.err" && return 0 ;;
    role) "$BAO" read "auth/$AUTH_MOUNT/role/$2" >"$work/cur" 2>"$work/cur.err" && return 0 ;;
    mount)
      if "$BAO" read -field=type "sys/mounts/$MOUNT_PREFIX/$2" >"$work/cur" 2>"$work/cur.err"; then
        if [ "$(cat "$work/cur")" = kv ]; then
          version=$("$BAO" read -field=options "sys/mounts/$MOUNT_PREFIX/$2" 2>/dev/null || true)
          case "$version" in *version:2*) echo kv-v2 >"$work/cur" ;; *) echo kv-v1 >"$work/cur" ;; esac
        fi
        return 0
      fi
      grep -q "No secret engine mount at" "$work/cur.err" && return 1
      if grep -q "permission denied" "$work/cur.err"; then
        fail "reading mount $MOUNT_PREFIX/$2: permission denied (the reconciler's policy predates secretEngines: $BOOTSTRAP_HINT, which writes the current policy)"
      fi ;;
  esac
  grep -q "No value found\|No policy named" "$work/cur.err" && return 1
  fail "reading $1 $2: $(tr '\n' ' ' < "$work/cur.err")"
}

for name in $want_mounts; do
  if exists mount "$name"; then
    have=$(cat "$work/cur")
    want=$(role_value "$DIR/mount.$name" type)
    if ! contains "$owned_mounts" "$name"; then
      problem "mount $MOUNT_PREFIX/$name exists but was not created by the reconciler (made by hand?): rename the declared one"
    elif [ "$have" != "$want" ]; then
      problem "mount $MOUNT_PREFIX/$name is $have, declared $want: changing the type would mean disabling it, which deletes its data; declare a new mount instead"
    fi
  fi
done

for name in $want_policies; do
  if ! contains "$owned_policies" "$name" && exists policy "$name"; then
    problem "policy $name exists but was not created by the reconciler (made by hand?): delete or rename one of them"
  fi
done
for name in $want_roles; do
  if ! contains "$owned_roles" "$name" && exists role "$name"; then
    problem "role $name exists but was not created by the reconciler (made by hand?): delete or rename one of them"
  fi
done
[ "$problems" -eq 0 ] || fail "$problems conflict(s) with objects the reconciler does not own; nothing was changed"

record() {
  "$BAO" kv put -mount="$KV_MOUNT" "$OWNED" mounts="$(words "$union_mounts")" policies="$(words "$1")" \
    roles="$(words "$2")" >/dev/null || fail "writing the ownership record $KV_MOUNT/$OWNED"
}
# Own the union first: an interrupted run still knows every object it may have created.
# Mounts stay owned for good (they are retained, never disabled).
union_mounts="$owned_mounts"
for name in $want_mounts; do contains "$union_mounts" "$name" || union_mounts="$union_mounts $name"; done
union_policies="$owned_policies"
for name in $want_policies; do contains "$union_policies" "$name" || union_policies="$union_policies $name"; done
union_roles="$owned_roles"
for name in $want_roles; do contains "$union_roles" "$name" || union_roles="$union_roles $name"; done
if [ "$union_mounts" != "$owned_mounts" ] || [ "$union_policies" != "$owned_policies" ] || [ "$union_roles" != "$owned_roles" ]; then
  record "$union_policies" "$union_roles"
fi

# ---- 4. apply ----------------------------------------------------------------------------
created=0; updated=0; deleted=0; unchanged=0; retained=0

# mount_drift NAME FILE: the declared keys whose value differs from the mount's (empty: none).
mount_drift() {
  drift=""
  for key in $TUNE_KEYS $KV_CONFIG_KEYS; do
    want=$(role_value "$2" "$key")
    [ -n "$want" ] || continue  # not declared: left as OpenBao sets it
    if contains "$TUNE_KEYS" "$key"; then
      have=$("$BAO" read -field="$key" "sys/mounts/$MOUNT_PREFIX/$1/tune" 2>/dev/null) || have="?"
    else
      have=$("$BAO" read -field="$key" "$MOUNT_PREFIX/$1/config" 2>/dev/null) || have="?"
    fi
    [ "$have" = "$want" ] || drift="$drift $key"
  done
  echo "$drift"
}

# kv_config FILE: the declared KV v2 config as key=value arguments.
kv_config() {
  for key in $KV_CONFIG_KEYS; do
    value=$(role_value "$1" "$key")
    [ -z "$value" ] || echo "$key=$value"
  done
}

for name in $want_mounts; do
  f="$DIR/mount.$name"
  path="$MOUNT_PREFIX/$name"
  set --
  for key in $TUNE_KEYS; do
    value=$(role_value "$f" "$key")
    [ -n "$value" ] || continue
    case "$key" in
      description) set -- "$@" "-description=$value" ;;
      default_lease_ttl) set -- "$@" "-default-lease-ttl=${value}s" ;;
      max_lease_ttl) set -- "$@" "-max-lease-ttl=${value}s" ;;
    esac
  done
  if exists mount "$name"; then
    drift=$(mount_drift "$name" "$f")
    if [ -z "$drift" ]; then
      log "mount $path: unchanged"; unchanged=$((unchanged + 1)); continue
    fi
    "$BAO" secrets tune "$@" "$path" >/dev/null || fail "tuning mount $path"
    verb="updated ($(words "$drift"))"; updated=$((updated + 1))
  else
    type=$(role_value "$f" type)
    case "$type" in
      kv-v2) "$BAO" secrets enable -path="$path" -version=2 "$@" kv >/dev/null ;;
      *) "$BAO" secrets enable -path="$path" "$@" "$type" >/dev/null ;;
    esac || fail "enabling mount $path ($type)"
    verb=created; created=$((created + 1))
  fi
  config=$(kv_config "$f")
  if [ -n "$config" ]; then
    # shellcheck disable=SC2086 # key=value words without spaces (validated values)
    "$BAO" write "$path/config" $config >/dev/null || fail "configuring mount $path"
  fi
  log "mount $path: $verb"
done
for name in $owned_mounts; do
  contains "$want_mounts" "$name" && continue
  log "mount $MOUNT_PREFIX/$name: retained (no longer declared; never disabled, which would delete its data; to remove it see docs/tenants.md)"
  retained=$((retained + 1))
done
for name in $want_policies; do
  f="$DIR/policy.$name.hcl"
  if exists policy "$name"; then
    if [ "$(cat "$work/cur")" = "$(cat "$f")" ]; then
      log "policy $name: unchanged"; unchanged=$((unchanged + 1)); continue
    fi
    verb=updated; updated=$((updated + 1))
  else
    verb=created; created=$((created + 1))
  fi
  "$BAO" policy write "$name" "$f" >/dev/null || fail "writing policy $name"
  log "policy $name: $verb"
done

for name in $want_roles; do
  f="$DIR/role.$name"
  if exists role "$name"; then
    same=1
    # One read per key (-field prints the stored value, durations in seconds), all at once.
    for key in $ROLE_KEYS; do
      "$BAO" read -field="$key" "auth/$AUTH_MOUNT/role/$name" >"$work/have.$key" 2>"$work/have.$key.err" &
    done
    wait
    for key in $ROLE_KEYS; do
      [ -s "$work/have.$key.err" ] && fail "reading role $name: $(tr '\n' ' ' < "$work/have.$key.err")"
      want=$(role_value "$f" "$key")
      case "$key" in token_ttl|token_max_ttl) ;; *) want="[$(echo "$want" | tr ',' ' ')]" ;; esac
      [ "$(cat "$work/have.$key")" = "$want" ] || { same=0; break; }
    done
    if [ "$same" -eq 1 ]; then
      log "role $name: unchanged"; unchanged=$((unchanged + 1)); continue
    fi
    verb=updated; updated=$((updated + 1))
  else
    verb=created; created=$((created + 1))
  fi
  set --
  while IFS= read -r line || [ -n "$line" ]; do
    [ -n "$line" ] && set -- "$@" "$line"
  done < "$f"
  "$BAO" write "auth/$AUTH_MOUNT/role/$name" "$@" >/dev/null || fail "writing role $name"
  log "role $name: $verb"
done

for name in $owned_roles; do
  contains "$want_roles" "$name" && continue
  "$BAO" delete "auth/$AUTH_MOUNT/role/$name" >/dev/null || fail "deleting role $name"
  log "role $name: deleted"; deleted=$((deleted + 1))
done
for name in $owned_policies; do
  contains "$want_policies" "$name" && continue
  "$BAO" policy delete "$name" >/dev/null || fail "deleting policy $name"
  log "policy $name: deleted"; deleted=$((deleted + 1))
done

if [ "$(words "$want_policies")" != "$(words "$owned_policies")" ] || [ "$(words "$want_roles")" != "$(words "$owned_roles")" ]; then
  record "$want_policies" "$want_roles"
fi
log "done: $created created, $updated updated, $deleted deleted, $unchanged unchanged, $retained retained"
