"""Fault injection: make the next N requests to a route fail in a chosen way."""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass

from sandbox.simulator.protocol import ArmError
from sandbox.simulator.state import quota_exceeded

FAULT_KINDS = frozenset({"429", "500", "403", "mua_403", "daily_limit", "latency", "drop"})

# Not verified: no public source shows the code Azure Backup returns when a Resource Guard
# (Multi-User Authorization) blocks a critical operation. MUA is enforced by a linked access
# check on the Resource Guard (the spec's ``resourceGuardOperationRequests`` "on which LAC check
# will be performed"), and ARM reports a failed linked check as ``LinkedAuthorizationFailed``.
MUA_DENIED_CODE = "LinkedAuthorizationFailed"

_ERRORS: dict[str, tuple[int, str, str]] = {
    "429": (429, "TooManyRequests", "The request is being throttled. Retry after some time."),
    "500": (500, "InternalServerError", "The server encountered an internal error."),
    "403": (
        403,
        "AuthorizationFailed",
        "The client does not have authorization to perform this action over this scope.",
    ),
    "mua_403": (
        403,
        MUA_DENIED_CODE,
        "The client has permission on the vault, but the operation is a critical operation "
        "protected by a Resource Guard (Multi-User Authorization) and the client does not "
        "have the required permission on the Resource Guard.",
    ),
}


@dataclass
class Fault:
    """One queued fault.

    :ivar route: the route name it applies to.
    :ivar kind: one of :data:`FAULT_KINDS`.
    :ivar remaining: how many more matching requests it applies to.
    :ivar retry_after: ``Retry-After`` seconds sent with a ``429``.
    :ivar delay: seconds a ``latency`` fault waits before serving normally.
    """

    route: str
    kind: str
    remaining: int
    retry_after: int = 1
    delay: float = 0.0

    def error(self) -> ArmError | None:
        """The ARM error this fault answers with; ``None`` for ``latency`` and ``drop``.

        ``daily_limit`` answers as the simulator does when an item's on-demand backups of the
        UTC day are used up (``CloudDosAbsoluteLimitReached``), without using them up.
        """
        if self.kind == "daily_limit":
            return quota_exceeded()
        if self.kind not in _ERRORS:
            return None
        status, code, message = _ERRORS[self.kind]
        headers = {"Retry-After": str(self.retry_after)} if self.kind == "429" else {}
        return ArmError(status, code, message, headers)


class FaultInjector:
    """Thread-safe queue of faults per route; the oldest live fault for a route applies first.

    :param routes: the valid route names.
    """

    def __init__(self, routes: Collection[str]) -> None:
        self._routes = frozenset(routes)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self, route: str, kind: str, times: int = 1, retry_after: int = 1, delay: float = 0.0
    ) -> None:
        """Queue a fault for the next ``times`` requests to ``route``.

        :param route: a route name, e.g. ``"backup_trigger"``.
        :param kind: ``"429"``, ``"500"``, ``"403"``, ``"mua_403"``, ``"daily_limit"``,
            ``"latency"`` or ``"drop"``.
        :param times: how many matching requests it applies to.
        :param retry_after: ``Retry-After`` seconds for ``429``.
        :param delay: seconds to wait for ``latency``.
        :raises ValueError: on an unknown route or kind, or ``times < 1``.
        """
        if route not in self._routes:
            raise ValueError(f"unknown route {route!r}; known: {sorted(self._routes)}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {sorted(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(Fault(route, kind, times, retry_after, delay))

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def take(self, route: str) -> Fault | None:
        """Consume one use of the oldest fault queued for ``route``.

        :return: the fault to apply, or ``None``.
        """
        with self._lock:
            fault = next((f for f in self._faults if f.route == route), None)
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
            return fault
