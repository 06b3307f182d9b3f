"""The Functions host's timer trigger, played on a :class:`sandbox.clock.SkippingClock`.

As the host's ``TimerListener`` does: after an invocation, the next one is due at the
schedule's next occurrence after the invocation's own start; when that moment has already
passed (the run overran its interval), it starts at once. Runs never overlap. Waiting for an
occurrence is skipped (the clock jumps to it); the work of a run takes its real time plus the
waits skipped inside it (ARM pacing, ``Retry-After``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.clock import SkippingClock

_EVERY = re.compile(r"^0 \*/(\d+) \* \* \* \*$|^0 (\d+) \* \* \* \*$")


def period_seconds(schedule: str) -> float:
    """The period of an every-N-minutes NCRONTAB schedule (``0 */N * * * *``), seconds."""
    match = _EVERY.match(schedule.strip())
    if not match:
        raise ValueError(f"not an every-N-minutes schedule: {schedule!r}")
    return 60.0 * int(match.group(1)) if match.group(1) else 3600.0


def next_occurrence(after: float, period: float) -> float:
    """The first occurrence strictly after ``after`` (occurrences at multiples of ``period``)."""
    return (after // period + 1) * period


def play(
    clock: SkippingClock,
    period: float,
    run: Callable[[], Any],
    until: Callable[[Any], bool],
    max_runs: int = 1_000,
) -> list[tuple[float, float, Any]]:
    """Invoke ``run`` on the schedule from the next occurrence on, until ``until(result)``;
    returns ``(started, ended, result)`` of each invocation, in simulated seconds."""
    runs: list[tuple[float, float, Any]] = []
    due = next_occurrence(clock.now(), period)
    for _ in range(max_runs):
        if clock.now() < due:
            clock.advance(due - clock.now())
        started = clock.now()
        result = run()
        runs.append((started, clock.now(), result))
        if until(result):
            break
        due = next_occurrence(started, period)
    return runs
