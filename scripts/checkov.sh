#!/usr/bin/env bash
# Static checks of infra/ (Bicep): a parse of every .bicep file, then checkov's Bicep policies.
#
# checkov lives in its own venv (.venv-checkov, pinned, rebuilt only when the pin changes) so
# that its many dependencies never clash with the app's .venv.
#
# No Bicep compiler can be installed here (the Bicep CLI ships from GitHub releases and
# NuGet, and the npm/PyPI wrappers download it at run time), so this is not `bicep build`:
# the parse step uses pycep (the Lark grammar checkov itself parses Bicep with) and fails on
# any file it cannot parse, which checkov alone would only log and skip. Type checking
# (property names, API versions) still needs `az bicep build` / `azd provision --preview`.
# pycep rejects five or more consecutive comment lines inside an object or array (Bicep
# accepts them): keep such comments to four lines.
#
# Exit status: non-zero on a parse error or on any failed checkov check. Extra arguments go
# to checkov (e.g. --check CKV_AZURE_35).
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
venv=.venv-checkov
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  echo "checkov.sh: installing checkov $CHECKOV_VERSION into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$CHECKOV_VERSION"
  echo "$CHECKOV_VERSION" > "$venv/.stamp"
fi

echo "checkov.sh: parsing infra/**/*.bicep" >&2
"$venv/bin/python" - <<'PY'
import sys
from pathlib import Path

from pycep import BicepParser

failed = 0
files = sorted(Path("infra").rglob("*.bicep"))
if not files:
    sys.exit("checkov.sh: no .bicep files under infra/")
parser = BicepParser(add_line_numbers=True)
for path in files:
    try:
        parser.parse(text=path.read_text(encoding="utf-8"))
    except Exception as exc:  # Lark and pycep raise errors of several kinds
        failed += 1
        print(f"checkov.sh: {path}: does not parse: {exc}", file=sys.stderr)
print(f"checkov.sh: {len(files) - failed}/{len(files)} Bicep files parse", file=sys.stderr)
sys.exit(1 if failed else 0)
PY

# --framework bicep: checkov's Bicep runner (no compile needed). Findings that do not apply
# are skipped inline in the .bicep files with `//checkov:skip=CKV_…:reason`.
exec "$venv/bin/checkov" -d infra --framework bicep --quiet --compact \
  --skip-download --output cli "$@"
