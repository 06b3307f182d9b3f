"""The retry queue's messages: which incident, which attempt, what to check next.

A message is JSON; reading one validates it before anything is read from storage (unknown
fields are ignored, so a newer or older app version can read it) and raises
:class:`MessageError` with the reason when it cannot be used.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, fields, replace
from datetime import timedelta
from typing import Any

from handlers.storage import RetryQueue


class MessageKind:
    """What a retry-queue message asks for."""

    #: Start (or re-check) an attempt of the on-demand backup.
    RETRY = "retry"
    #: Read the job an attempt started and act on its outcome.
    FOLLOW_UP = "follow_up"
    ALL = (RETRY, FOLLOW_UP)


class MessageError(ValueError):
    """A queue message that cannot be used; the message says why."""


@dataclass(frozen=True)
class RetryMessage:
    """A retry-queue message.

    :ivar operation: the on-demand backup's operation status URL (follow-ups).
    :ivar job: the backup job the attempt started, once known (follow-ups).
    :ivar checks: follow-up checks of a running job so far.
    :ivar seq: its place in the incident's chain of messages for this attempt; with the attempt
        it makes the message's identity (:attr:`id`), the same however often it is sent.
    :ivar slot: the stagger window (its counter period, ``YYYYMMDDhhmm``) whose start slot this
        retry reserved and holds; the message is due when that window begins.
    :ivar day: the UTC day (``YYYYMMDD``) before which no backup is started: Azure's daily limit
        of operations for the item was reached (a ``CloudDos…`` throttle), so the retry waits
        for the next UTC day instead of spending an attempt.
    """

    kind: str
    pk: str
    rk: str
    attempt: int
    operation: str = ""
    job: str = ""
    checks: int = 0
    seq: int = 0
    slot: str = ""
    day: str = ""

    @property
    def id(self) -> str:
        """The message's identity: attempt and place in the chain (``2.3``)."""
        return f"{self.attempt}.{self.seq}"

    @property
    def successor_id(self) -> str:
        """The identity of the message that follows this one in its chain (:meth:`next`)."""
        return f"{self.attempt}.{self.seq + 1}"

    def next(self, kind: str, **changes: Any) -> RetryMessage:
        """The message that follows this one in the chain (one at most per message)."""
        return replace(self, kind=kind, seq=self.seq + 1, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RetryMessage:
        """:raises MessageError: not JSON, not an object, a field missing or of a wrong type."""
        try:
            raw: Any = json.loads(text)
        except (ValueError, RecursionError):
            raise MessageError("not JSON") from None
        if not isinstance(raw, dict):
            raise MessageError("not a JSON object")
        values = {}
        for spec in fields(cls):
            if spec.name not in raw:
                if spec.default is MISSING:
                    raise MessageError(f"{spec.name} is missing")
                continue
            values[spec.name] = raw[spec.name]
        message = cls(**values)
        message._check()
        return message

    def _check(self) -> None:
        for name in ("kind", "pk", "rk", "operation", "job", "slot", "day"):
            if not isinstance(getattr(self, name), str):
                raise MessageError(f"{name} must be a string")
        for name in ("attempt", "checks", "seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MessageError(f"{name} must be a whole number")
        if self.kind not in MessageKind.ALL:
            raise MessageError(f"unknown kind {self.kind[:50]!r}")
        if not (self.pk and self.rk) or self.attempt < 1:
            raise MessageError("pk, rk and attempt (from 1) are required")


def enqueue(queue: RetryQueue, message: RetryMessage, delay: timedelta, scale: float) -> None:
    """Put ``message`` on the retry queue, visible after ``delay`` times ``scale``."""
    queue.send(message.to_json(), int(delay.total_seconds() * scale))
