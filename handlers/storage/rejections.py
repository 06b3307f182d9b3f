"""Rejected inputs (``rejected`` table): PartitionKey the UTC day, RowKey inverted time + id.

Whatever could not be handled is kept here with its reason and a bounded excerpt; nothing
arrives and vanishes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from handlers.core.model import Rejection
from handlers.storage.keys import inverted_ticks
from handlers.storage.tables import REJECTIONS, TableSet


class RejectionStore:
    """Rejected inputs, newest first per day."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[REJECTIONS]

    def record(self, rejection: Rejection) -> str:
        """Keep a rejected input with its reason; returns the row's id."""
        at = rejection.received_at.astimezone(UTC)
        row = f"{inverted_ticks(at)}_{uuid.uuid4().hex}"
        self._table.create_entity(
            {
                "PartitionKey": at.strftime("%Y%m%d"),
                "RowKey": row,
                "Reason": rejection.reason,
                "Source": rejection.source,
                "EventId": rejection.event_id,
                "Payload": rejection.payload,
                "ReceivedAt": at,
            }
        )
        return row

    def all(self) -> Iterator[dict[str, Any]]:
        """Every rejected input (oldest day first, newest first within a day)."""
        for entity in self._table.list_entities():
            yield dict(entity)
