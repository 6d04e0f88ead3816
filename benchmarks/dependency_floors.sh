#!/usr/bin/env bash
# Install the suite at its declared dependency floors (constraints/floors.txt) in a fresh virtual
# environment and run the tests there; prints the versions installed and pytest's result.
#   benchmarks/dependency_floors.sh [VENV_DIR] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-/tmp/icl-floors}; shift || true
rm -rf "$VENV"
python -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet -c constraints/floors.txt -e ".[test]"
"$VENV/bin/python" -m pip list 2>/dev/null | grep -Ei "^(torch|numpy|sympy|galois|pandas|pyarrow|matplotlib|tqdm|scikit-learn|pytest|hypothesis|nbclient) "
"$VENV/bin/python" -m pytest -q "$@"
