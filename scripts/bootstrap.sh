#!/usr/bin/env bash
# Make the development environment current: .venv from requirements-dev.txt, node_modules
# from package-lock.json. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "bootstrap: Python 3.11 is required (found $("$python" --version 2>&1))" >&2
  exit 1
fi

stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
want=$(stamp requirements.txt requirements-dev.txt pyproject.toml)
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python packages into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
  echo "$want" > .venv/.stamp
fi

want=$(stamp package.json package-lock.json)
if [ ! -x node_modules/.bin/azurite ] || [ "$(cat node_modules/.stamp 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Azurite into node_modules" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.stamp
fi
