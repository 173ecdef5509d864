#!/usr/bin/env bash
# Install (first time only) and run the whole test suite, headless.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
