#!/usr/bin/env bash
# promtool, Prometheus' own rule checker and unit-test runner, for tests/test_alert_rules.py:
# the alert expressions are evaluated by the real Prometheus rule engine, not re-implemented.
#
#   bash tools/ci/promtool.sh --install   # put .venv/bin/promtool in place; idempotent
#
# It comes from Debian's `prometheus` package (the binary only: `apt-get download` and
# `dpkg-deb -x`, so no service is installed or started). Elsewhere, any promtool >= 2.42 on
# PATH works: https://prometheus.io/download/ (it ships in the prometheus tarball).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET="$ROOT/.venv/bin/promtool"

[[ "${1:-}" == "--install" ]] || { echo "usage: $0 --install" >&2; exit 2; }
if [[ -x "$TARGET" ]] && "$TARGET" --version >/dev/null 2>&1; then
  exit 0
fi
if command -v promtool >/dev/null 2>&1; then
  ln -sf "$(command -v promtool)" "$TARGET"
  exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "promtool.sh: fetching promtool from Debian's prometheus package" >&2
if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
  # a fresh machine may have no package lists yet
  (apt-get update -qq >/dev/null 2>&1 || true)
  if ! (cd "$work" && apt-get download prometheus >"$work/apt.log" 2>&1); then
    cat "$work/apt.log" >&2
    echo "promtool.sh: could not download Debian's prometheus package; install promtool by hand:" \
         "apt-get install prometheus (or the tarball from https://prometheus.io/download/)" >&2
    exit 1
  fi
fi
dpkg-deb -x "$work"/prometheus_*.deb "$work/x"
install -m 0755 "$work/x/usr/bin/promtool" "$TARGET"
"$TARGET" --version | head -n 1 >&2
