"""Morning digests (``digests`` table): one row per UTC day, the digest history.

PartitionKey ``digest``; RowKey the UTC day (``YYYY-MM-DD``). The row is the digest's claim
and its record: inserted if absent with state ``sending`` and a lease (so two runs of the same
day send one digest), each channel noted as soon as it took the message (a run that takes over
after a crash sends only what is missing), then ``sent`` (or ``partial`` when a channel
failed). A later run sends an unfinished digest to the channels it is missing: the same day's,
or a later day's run before its own digest (up to :data:`CATCH_UP_DAYS` back), so the next
window, which starts where the last digest ended, never skips a night nobody received.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from handlers.storage.etag import guarded_update
from handlers.storage.tables import DIGESTS, TableSet

PARTITION = "digest"
#: How many days back a digest that did not reach every channel is finished by a later run
#: (and shown by health until it is).
CATCH_UP_DAYS = 7
#: Longest digest text kept on a row.
MAX_TEXT = 30_000


class DigestState:
    """A digest row's state."""

    SENDING = "sending"
    SENT = "sent"
    #: A channel failed; a later run of the same day sends to it only.
    PARTIAL = "partial"


class DigestStore:
    """The digest of each day: claim, channels that took it, outcome."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[DIGESTS]

    def begin(
        self, day: str, since: datetime, until: datetime, now: datetime, lease: timedelta
    ) -> dict[str, Any] | None:
        """Claim the digest of ``day`` for ``[since, until)``; returns its row (whose
        ``Since``/``Until`` a takeover keeps, so every channel gets the same window), or None
        when it was sent already or another run holds a live lease.

        :raises handlers.storage.errors.ContentionError: the row kept changing.
        """
        row = {
            "PartitionKey": PARTITION,
            "RowKey": day,
            "State": DigestState.SENDING,
            "LeaseUntil": now + lease,
            "Since": since,
            "Until": until,
            "Channels": "[]",
        }
        try:
            self._table.create_entity(row)
            return row
        except ResourceExistsError:
            return self.take(day, now, lease)

    def take(self, day: str, now: datetime, lease: timedelta) -> dict[str, Any] | None:
        """Take over the digest of ``day`` (its window kept) unless it was sent or another run
        holds a live lease; returns its row, or None.

        :raises handlers.storage.errors.ContentionError: the row kept changing.
        """
        taken: list[dict[str, Any]] = []

        def take(found: dict[str, Any]) -> bool:
            taken.clear()
            if found["State"] == DigestState.SENT or (
                found["State"] == DigestState.SENDING and found["LeaseUntil"] > now
            ):
                return False
            found.update(State=DigestState.SENDING, LeaseUntil=now + lease)
            taken.append(found)
            return True

        guarded_update(self._table, PARTITION, day, take)
        return taken[0] if taken else None

    def note_channel(self, day: str, channel: str) -> None:
        """``channel`` took the digest of ``day`` (written at once: never sent twice)."""

        def add(row: dict[str, Any]) -> None:
            row["Channels"] = json.dumps(sorted({*json.loads(row["Channels"]), channel}))

        guarded_update(self._table, PARTITION, day, add)

    def finish(self, day: str, state: str, text: str, **facts: Any) -> dict[str, Any]:
        """Close the digest of ``day`` as ``state`` with its text and counts."""

        def close(row: dict[str, Any]) -> None:
            row.update(State=state, Text=text[:MAX_TEXT], **facts)

        return guarded_update(self._table, PARTITION, day, close)

    def get(self, day: str) -> dict[str, Any] | None:
        try:
            return dict(self._table.get_entity(PARTITION, day))
        except ResourceNotFoundError:
            return None

    def undelivered(self, first_day: str, before_day: str) -> list[dict[str, Any]]:
        """The digests of ``[first_day, before_day)`` not sent to every channel yet
        (``partial``, or ``sending``: being sent, or left so by a run that died), oldest first;
        none when the table does not exist yet."""
        try:
            rows = [
                dict(row)
                for row in self._table.query_entities(
                    "PartitionKey eq @pk and RowKey ge @first and RowKey lt @day "
                    "and State ne @sent",
                    parameters={
                        "pk": PARTITION,
                        "first": first_day,
                        "day": before_day,
                        "sent": DigestState.SENT,
                    },
                )
            ]
        except ResourceNotFoundError:
            return []
        return sorted(rows, key=lambda row: row["RowKey"])

    def before(self, day: str) -> dict[str, Any] | None:
        """The newest digest of a day before ``day`` (None before the first one, or when the
        table does not exist yet: read-only tools never create it)."""
        try:
            rows = [
                dict(row)
                for row in self._table.query_entities(
                    "PartitionKey eq @pk and RowKey lt @day",
                    parameters={"pk": PARTITION, "day": day},
                )
            ]
        except ResourceNotFoundError:
            return None
        return max(rows, key=lambda row: row["RowKey"], default=None)
