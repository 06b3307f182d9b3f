"""Cold start: the time to ``import function_app`` in a fresh interpreter.

Measured with ``python -X importtime -c "import function_app"`` (the cumulative time of the
``function_app`` line), several times, median. The baseline, in the same run, is the same
import followed by the management SDKs an eager design would import at start-up
(``azure.mgmt.recoveryservicesbackup``, ``azure.mgmt.compute``, ``azure.mgmt.recoveryservices``).
A separate fresh interpreter checks that no ``azure.mgmt`` module is loaded after
``import function_app``, and measures what the first event adds
(``handlers.intake.eventgrid``, imported by the trigger on first use).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from bench.common import ROOT, Row, median

TARGET_MS = 300
MANAGEMENT = (
    "azure.mgmt.recoveryservicesbackup",
    "azure.mgmt.compute",
    "azure.mgmt.recoveryservices",
)
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


def import_ms(modules: tuple[str, ...]) -> float:
    """Cumulative import time of ``modules`` (top level, in this order) in a fresh
    interpreter, milliseconds."""
    code = "; ".join(f"import {m}" for m in modules)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in done.stderr.splitlines():
        match = _LINE.match(line)
        if match and match[3] == " " and match[4] in modules:
            total += int(match[2])
    if not total:
        raise RuntimeError(f"no importtime line for {modules}:\n{done.stderr[-2000:]}")
    return total / 1000


def loaded_after_import() -> list[str]:
    """``azure.mgmt`` modules present right after ``import function_app``."""
    code = (
        "import json, sys; import function_app; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure.mgmt'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def run(repeats: int = 7) -> list[Row]:
    lazy, eager, first_event = [], [], []
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        lazy.append(import_ms(("function_app",)))
        eager.append(import_ms(("function_app", *MANAGEMENT)))
        first_event.append(import_ms(("function_app", "handlers.intake.eventgrid")) - lazy[-1])
    management = loaded_after_import()
    figure = median(lazy)
    return [
        Row(
            name="cold start: import function_app",
            figure=figure,
            baseline=median(eager),
            unit="ms",
            target=f"< {TARGET_MS} ms",
            passed=figure < TARGET_MS and not management,
            note=(
                f"python -X importtime, fresh interpreter, median of {repeats}; baseline: the "
                f"same import plus the three management SDKs imported eagerly; azure.mgmt "
                f"modules loaded after the import: {len(management)}"
                f"{' ' + ', '.join(management) if management else ''}; the first event then "
                "imports the pipeline (handlers.intake.eventgrid): "
                f"+{median(first_event):.0f} ms, once"
            ),
            runs=tuple(lazy),
        )
    ]


if __name__ == "__main__":
    from bench.common import table

    print(table(run()))
