"""Morning digests (``digests`` table): one row per UTC day, the digest history.

PartitionKey ``digest``; RowKey the UTC day (``YYYY-MM-DD``). The row is the digest's claim
and its record: inserted if absent with state ``sending`` and a lease (so two runs of the same
day send one digest), each channel noted as soon as it took the message (a run that takes over
after a crash sends only what is missing), then ``sent`` (or ``partial`` when a channel
failed: a later run of the same day sends to that channel only).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from handlers.storage.etag import guarded_update
from handlers.storage.tables import DIGESTS, TableSet

PARTITION = "digest"
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
            pass
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
