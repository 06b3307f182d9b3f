"""Read pacing: our GETs to Azure Resource Manager kept under ARM's read refill rate.

ARM throttles each principal per subscription with a token bucket: about 25 reads a second
refill it (and a bucket of 250 lets a burst through). An outage that makes us read 10,000 job
details cannot be read faster than that; read faster, we are answered 429 and wait anyway,
and the actions reading at the same time are throttled with us. So every GET our management
clients send takes a token from a bucket of our own first (:class:`ReadPacer`, one per
subscription), refilled at ``ARM_READS_PER_SECOND`` with at most ``ARM_READ_BURST`` tokens held.

The pacer sits after azure-core's retry policy (:class:`ReadPacingPolicy`), so a request sent
again after a 429 takes a token again, as ARM counts it; the retry policy still waits the
``Retry-After`` that ARM names, through the transport's ``sleep``, which is the same
:class:`PaceClock` (so a simulated clock sees those waits as well). A 429 says ARM's bucket is
empty for every reader of the subscription, not just the one answered: the pacer then holds
every read of its bucket until the ``Retry-After`` has passed (:meth:`ReadPacer.hold`), so
the other readers do not spend their own retries on 429s meanwhile.

The clock and the sleep are injectable: tests and benchmarks run on a simulated clock
(``sleep`` moves the clock forward and returns at once); the app uses the monotonic clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy, SansIOHTTPPolicy

#: Methods ARM counts as reads.
READS = frozenset({"GET", "HEAD"})
#: ARM's answer when its bucket is empty.
THROTTLED = 429
#: azure-core's own reading of a response's ``Retry-After`` (seconds, an HTTP date or the
#: ``-ms`` headers), so the bucket is held exactly as long as the retry policy waits.
_retry_after = RetryPolicy().get_retry_after


@dataclass(frozen=True)
class PaceClock:
    """Monotonic seconds and a way to wait (the real ones by default)."""

    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class ReadPacer:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` held, starting full.

    :meth:`take` reserves a token and waits until it is due: concurrent callers each get their
    own moment (a reservation may drive the bucket below zero; the debt is paid in time), so
    ``n`` reads from a full bucket take at least ``(n - burst) / rate`` seconds, whatever the
    threads.
    """

    def __init__(self, rate: float, burst: int, clock: PaceClock | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = float(rate), int(burst)
        self.clock = clock or PaceClock()
        self._tokens = float(self.burst)
        self._at = self.clock.now()
        #: No read is due before this moment (ARM's last ``Retry-After``).
        self._held_until = self._at
        self._lock = threading.Lock()
        self.taken = 0
        self.waited = 0.0

    def take(self) -> float:
        """Take one token, waiting until it is due; returns the seconds waited."""
        with self._lock:
            now = self.clock.now()
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= 1.0
            due = now + (-self._tokens / self.rate if self._tokens < 0 else 0.0)
            due = max(due, self._held_until)
            self.taken += 1
        # The wait is measured just before sleeping: on a shared simulated timeline another
        # thread's sleep may already have brought the moment.
        wait = due - self.clock.now()
        if wait > 0:
            self.clock.sleep(wait)
            with self._lock:
                self.waited += wait
        return max(wait, 0.0)

    def hold(self, seconds: float) -> None:
        """ARM answered 429 with this ``Retry-After``: no read of the bucket is due before it
        has passed."""
        with self._lock:
            self._held_until = max(self._held_until, self.clock.now() + seconds)


class ReadPacingPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """Takes a token of the subscription's :class:`ReadPacer` before each read is sent, and
    holds the pacer when ARM answers 429."""

    def __init__(self, pacer: ReadPacer) -> None:
        super().__init__()
        self.pacer = pacer

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if request.http_request.method.upper() in READS:
            self.pacer.take()

    def on_response(
        self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]
    ) -> None:
        # ARM keeps reads and writes in separate buckets: a throttled write holds no read.
        read = request.http_request.method.upper() in READS
        if read and response.http_response.status_code == THROTTLED:
            self.pacer.hold(_retry_after(response) or 0.0)
