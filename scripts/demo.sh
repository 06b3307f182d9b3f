#!/usr/bin/env bash
# The main job on a local sandbox: Azurite (+ the Azure API simulator), the bundled sample
# events through the function entry point, what was decided, the incident table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/python -m sandbox.demo "$@"
