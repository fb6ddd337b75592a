#!/bin/sh
# Install checkov (pinned) into its own virtualenv, .venv-checkov/, unless it is there already. Used by `make test`
# for the scan of the rendered prod overlay (k8s/tests/test_checkov.py). Its own venv: checkov pins many libraries
# (boto3, jsonschema, packaging, ...) that must not move the platform's pins in .venv.
set -eu
VERSION=3.3.30
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv-checkov"
if ! "$VENV/bin/checkov" --version 2>/dev/null | grep -qx "$VERSION"; then
  "${PYTHON:-python3.11}" -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "checkov==$VERSION"
fi
"$VENV/bin/checkov" --version
