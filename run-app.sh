#!/usr/bin/env bash
# Install (first time only) and open ReSet Studio on the embedded demo.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
exec .venv/bin/reset-gui "$@"
