"""Clocks for the Azure layer's pacing (:class:`handlers.azure.pacing.PaceClock`) that do not
wait: tests and benchmarks see minutes of ARM pacing in moments.

- :class:`SimulatedClock`: time moves only when someone sleeps (real work takes no time).
- :class:`SkippingClock`: real (monotonic) time plus every wait skipped so far, so real work
  counts in full and only the waits are skipped; what it reads is what the run would have
  taken had it waited.

Concurrent sleepers share one timeline: a sleep moves it forward for everyone, and a thread
whose moment has passed meanwhile does not wait again (the pacer computes its wait just
before sleeping).
"""

from __future__ import annotations

import threading
import time

from handlers.azure.pacing import PaceClock


class SimulatedClock:
    """Seconds that move only by :meth:`sleep` (and :meth:`advance`)."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            if seconds > 0:
                self._now += seconds
                self.slept += seconds
            self.sleeps.append(seconds)

    def advance(self, seconds: float) -> None:
        """Move the time forward without anyone waiting (e.g. to the next timer occurrence)."""
        with self._lock:
            self._now += max(seconds, 0.0)

    def pace(self) -> PaceClock:
        return PaceClock(now=self.now, sleep=self.sleep)


class SkippingClock(SimulatedClock):
    """Real monotonic seconds plus every sleep and advance skipped so far."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self._origin = time.monotonic()

    def now(self) -> float:
        with self._lock:
            return time.monotonic() - self._origin + self._now
