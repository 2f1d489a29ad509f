#!/usr/bin/env bash
# Create (once) the Python environment the tests use as independent clients
# and references: onnxruntime, the receipt re-implementation's blake3 and
# pynacl, pytest. Prints the path of its python.
set -euo pipefail
venv="${VOUCH_VENV:-$HOME/.cache/vouch/venv}"
req="$(cd "$(dirname "$0")/.." && pwd)/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
