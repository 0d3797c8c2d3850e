#!/usr/bin/env bash
# Security scan of rendered Kubernetes manifests with checkov, from its own venv.
#
# checkov pins an old `packaging` (and much else) that conflicts with the program's
# dependencies, so it lives in .venv-checkov, never in .venv.
#
#   bash tools/ci/checkov.sh --install    # create .venv-checkov (needs PyPI); idempotent
#   bash tools/ci/checkov.sh DIR          # scan DIR (creates the venv first if missing)
#
# Exit status is checkov's: 0 only when no check failed. Waivers are NOT configured
# here: each one is a `checkov.io/skip<N>: CKV_K8S_<id>=<reason>` annotation on the
# object that needs it, so the reason lives next to the code that causes it.
set -euo pipefail

CHECKOV_VERSION="3.3.30"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
PYTHON="${PYTHON:-python3}"

installed() {
  [[ -x "$VENV/bin/checkov" ]] && [[ "$("$VENV/bin/checkov" --version 2>/dev/null)" == "$CHECKOV_VERSION" ]]
}

install() {
  installed && return 0
  echo "checkov.sh: installing checkov==$CHECKOV_VERSION into $VENV" >&2
  "$PYTHON" -m venv "$VENV"
  if ! "$VENV/bin/pip" install --disable-pip-version-check "checkov==$CHECKOV_VERSION" >"$VENV/install.log" 2>&1; then
    tail -n 30 "$VENV/install.log" >&2
    echo "checkov.sh: install failed (full log: $VENV/install.log)" >&2
    exit 1
  fi
}

[[ $# -eq 1 ]] || { echo "usage: $0 --install | DIR" >&2; exit 2; }
if [[ "$1" == "--install" ]]; then
  install
  exit 0
fi
[[ -d "$1" ]] || { echo "checkov.sh: no such directory: $1" >&2; exit 2; }
install
# Kubernetes checks only; compact + quiet: the summary line and one block per failure;
# --skip-download: no calls to Prisma Cloud (offline, deterministic).
exec "$VENV/bin/checkov" --directory "$1" --framework kubernetes --compact --quiet --skip-download --output cli
