"""What every benchmark shares: result rows, medians, the machine line, the table."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    :ivar figure: the measured value (median of the repeats), in ``unit``.
    :ivar baseline: the baseline measured in the same run, in ``unit``.
    :ivar ratio: ``figure / baseline`` (what the ratio means is in ``note``).
    :ivar passed: whether the target was met (``None`` when there is no target).
    """

    name: str
    figure: float
    baseline: float | None
    unit: str
    target: str
    passed: bool | None
    note: str = ""
    runs: tuple[float, ...] = field(default=())

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.figure / self.baseline


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt(value: float | None) -> str:
    """A number for the table: thousands separators, sensible precision."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (readable in a terminal too)."""
    lines = [
        "| measurement | figure | baseline (same run) | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        result = "—" if row.passed is None else ("pass" if row.passed else "FAIL")
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}"
        baseline = "—" if row.baseline is None else f"{fmt(row.baseline)} {row.unit}"
        lines.append(
            f"| {row.name} | {fmt(row.figure)} {row.unit} | {baseline} | {ratio} | "
            f"{row.target} | {result} |"
        )
    notes = [f"* {row.name}: {row.note}" for row in rows if row.note]
    return "\n".join([*lines, *([""] if notes else []), *notes])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _azurite_version() -> str:
    executable = ROOT / "node_modules" / ".bin" / "azurite"
    try:
        done = subprocess.run(
            [str(executable), "--version"], check=False, capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine() -> str:
    """One line naming the machine, for the README beside the figures."""
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, {_cpu_model()}, {os.cpu_count()} cores{memory}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()} "
        f"({sys.implementation.name}), Azurite {_azurite_version()}"
    )


def best_of(repeats: int, run: Callable[[], float]) -> list[float]:
    """``run()`` ``repeats`` times; its results in order (the caller takes the median)."""
    return [run() for _ in range(repeats)]


def peak_rss_mib() -> float:
    """This process's peak resident set size (``VmHWM``), MiB."""
    return _status_kib("VmHWM") / 1024


def rss_mib() -> float:
    """This process's resident set size now (``VmRSS``), MiB."""
    return _status_kib("VmRSS") / 1024


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} is not in /proc/self/status")
