"""A bound on the ARM requests one run sends (the orphan sweep's ``SWEEP_MAX_ARM_CALLS``).

Counted on the wire: every request the SDK clients send is first shown to the budget
(azure-core's ``raw_request_hook``, whose policy runs after the retry policy), so a retried
request, each page of a listing and each poll of a long-running operation count once. A run
asks :meth:`CallBudget.affords` before each step and starts no step its budget cannot pay for;
a step that has begun is finished (a stop of protection is never left half-way).
"""

from __future__ import annotations

import threading
from typing import Any

from handlers.azure.clients import AzureClients


class CallBudget:
    """At most ``limit`` ARM requests, counted as they are sent."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._spent = 0
        self._lock = threading.Lock()

    @property
    def spent(self) -> int:
        """Requests sent so far."""
        return self._spent

    def count(self, _request: Any) -> None:
        """The hook: one more request is about to be sent."""
        with self._lock:
            self._spent += 1

    def affords(self, calls: int = 1) -> bool:
        """Whether ``calls`` more requests stay within the limit."""
        return self._spent + calls <= self.limit

    def clients(self, clients: AzureClients) -> AzureClients:
        """Clients like ``clients`` whose every request is counted here."""
        return clients.counting(self.count)
