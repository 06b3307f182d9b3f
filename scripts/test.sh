#!/usr/bin/env bash
# The project's checks: lint, format, then the whole test suite (it starts its own Azurite
# and Azure API simulator). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/chromium.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
