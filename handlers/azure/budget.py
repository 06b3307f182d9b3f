"""A bound on the ARM requests one run sends (the orphan sweep's ``SWEEP_MAX_ARM_CALLS``).

Counted on the wire: every request the SDK clients send is first shown to the budget
(azure-core's ``raw_request_hook``, whose policy runs after the retry policy), so a retried
request, each page of a listing and each poll of a long-running operation count once. A run
asks :meth:`CallBudget.affords` before each step and starts no step its budget cannot pay for;
a request past the limit is refused (:class:`BudgetSpentError`, before it is sent: the next
page of a listing too), except inside :meth:`CallBudget.finishing`: a step that has begun and
must not be left half-way (a stop of protection), which reserved its calls up front.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from handlers.azure.clients import AzureClients

#: What a refused request says.
CALLS_SPENT = "the run's ARM call budget is spent"


class BudgetSpentError(Exception):
    """The next step, or the next request, costs more than the run has left."""


class CallBudget:
    """At most ``limit`` ARM requests, counted as they are sent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._spent = 0
        self._finishing = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        """Requests sent so far."""
        return self._spent

    def count(self, _request: Any) -> None:
        """The hook: one more request is about to be sent; refused past the limit unless a
        step is being finished.

        :raises BudgetSpentError: the limit is reached (the request is not sent).
        """
        with self._lock:
            if self._spent >= self.limit and not self._finishing:
                raise BudgetSpentError(CALLS_SPENT)
            self._spent += 1

    def affords(self, calls: int = 1) -> bool:
        """Whether ``calls`` more requests stay within the limit."""
        return self._spent + calls <= self.limit

    @contextmanager
    def finishing(self) -> Iterator[None]:
        """A step that must not be left half-way: its requests are never refused (it reserved
        them with :meth:`affords` before it began)."""
        with self._lock:
            self._finishing += 1
        try:
            yield
        finally:
            with self._lock:
                self._finishing -= 1

    def clients(self, clients: AzureClients) -> AzureClients:
        """Clients like ``clients`` whose every request is counted here."""
        return clients.counting(self.count)
