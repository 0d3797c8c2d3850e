#!/bin/sh
# Reconcile OpenBao's ACL policies and kubernetes auth roles with the desired state mounted
# from a ConfigMap (one file per object, nothing secret):
#   policy.<name>.hcl   an ACL policy, stored verbatim
#   role.<name>         a kubernetes auth role: key=value lines, lists comma-separated
# Semantics:
#   1. validate the whole desired state offline before any write (names inside the managed
#      prefixes, every policy parses with `bao policy fmt`, every role's policies are declared,
#      no wildcard binding, only known role keys); any problem: exit 1, nothing written.
#   2. log in with the kubernetes auth role RECONCILE_ROLE (its policy allows only the managed
#      prefixes and the ownership record, never the admin policy).
#   3. read the ownership record (KV v2 entry RECONCILE_OWNED_PATH of mount RECONCILE_KV_MOUNT:
#      fields `policies` and `roles`, space-separated). A declared object that exists but is
#      not owned (made by hand) is refused before any write.
#   4. create/update what is declared (policies before roles), delete what is owned and no
#      longer declared (roles before policies), record ownership; log every object as
#      created / updated / deleted / unchanged. Nothing else is ever touched.
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

# The value of key $2 in role file $1 (empty when absent).
role_value() {
  sed -n "s/^$2=//p" "$1" | head -n 1
}

# ---- 1. the desired state, validated offline -------------------------------------------
[ -d "$DIR" ] || fail "desired-state directory $DIR does not exist"
want_policies=""
want_roles=""
problems=0
problem() { echo "openbao-reconcile: invalid desired state: $*" >&2; problems=$((problems + 1)); }

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
BAO_TOKEN=$("$BAO" write -field=token "auth/$AUTH_MOUNT/login" role="$ROLE" jwt=@"$JWT_FILE") \
  || fail "login to auth/$AUTH_MOUNT/login with role $ROLE (a cluster initialised before the reconciler existed has no such role: run the one-time bootstrap in docs/tenants.md, section 4)"
export BAO_TOKEN

# ---- 3. ownership, and objects that exist but are not ours ---------------------------------
# read_owned FIELD: the field of the ownership record; empty when there is no record yet.
read_owned() {
  if "$BAO" kv get -mount="$KV_MOUNT" -field="$1" "$OWNED" >"$work/owned" 2>"$work/owned.err"; then
    cat "$work/owned"
  elif grep -q "No value found" "$work/owned.err"; then
    :
  else
    fail "reading the ownership record $KV_MOUNT/$OWNED: $(tr '\n' ' ' < "$work/owned.err")"
  fi
}
owned_policies=$(read_owned policies)
owned_roles=$(read_owned roles)

# exists KIND NAME: 0 when the object exists, 1 when it does not; fails on any other error.
exists() {
  if [ "$1" = policy ]; then
    "$BAO" policy read "$2" >"$work/cur" 2>"$work/cur.err" && return 0
  else
    "$BAO" read "auth/$AUTH_MOUNT/role/$2" >"$work/cur" 2>"$work/cur.err" && return 0
  fi
  grep -q "No value found\|No policy named" "$work/cur.err" && return 1
  fail "reading $1 $2: $(tr '\n' ' ' < "$work/cur.err")"
}

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
  "$BAO" kv put -mount="$KV_MOUNT" "$OWNED" policies="$(words "$1")" roles="$(words "$2")" >/dev/null \
    || fail "writing the ownership record $KV_MOUNT/$OWNED"
}
# Own the union first: an interrupted run still knows every object it may have created.
union_policies="$owned_policies"
for name in $want_policies; do contains "$union_policies" "$name" || union_policies="$union_policies $name"; done
union_roles="$owned_roles"
for name in $want_roles; do contains "$union_roles" "$name" || union_roles="$union_roles $name"; done
if [ "$union_policies" != "$owned_policies" ] || [ "$union_roles" != "$owned_roles" ]; then
  record "$union_policies" "$union_roles"
fi

# ---- 4. apply ----------------------------------------------------------------------------
created=0; updated=0; deleted=0; unchanged=0
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
    for key in $ROLE_KEYS; do
      want=$(role_value "$f" "$key")
      case "$key" in token_ttl|token_max_ttl) ;; *) want="[$(echo "$want" | tr ',' ' ')]" ;; esac
      have=$("$BAO" read -field="$key" "auth/$AUTH_MOUNT/role/$name") || fail "reading role $name"
      [ "$have" = "$want" ] || { same=0; break; }
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
log "done: $created created, $updated updated, $deleted deleted, $unchanged unchanged"
