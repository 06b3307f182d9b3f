"""Counters with a limit (``retries`` table): attempts per item per day, starts per vault per
stagger window. Taking a unit is ETag-guarded, so a limit holds across concurrent workers.
"""

from __future__ import annotations

from typing import Any

from handlers.storage.etag import guarded_update
from handlers.storage.keys import safe_key
from handlers.storage.tables import COUNTERS, TableSet


class CounterStore:
    """Named counters: PartitionKey the counter's subject, RowKey its period."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[COUNTERS]

    def take(self, subject: str, period: str, limit: int) -> bool:
        """Count one more for ``subject`` in ``period`` unless ``limit`` is reached.

        :returns: False (nothing counted) when the limit was already reached.
        :raises handlers.storage.errors.ContentionError: too contended; retry later.
        """
        taken = [False]

        def bump(row: dict[str, Any]) -> bool:
            # Decided afresh on each attempt: a write that lost a race is read and tried again.
            taken[0] = row["Count"] < limit
            if taken[0]:
                row["Count"] += 1
            return taken[0]

        guarded_update(self._table, safe_key(subject), period, bump, initial={"Count": 0})
        return taken[0]

    def counts(self) -> list[int]:
        """Every counter's value (for checks and tests)."""
        return [e["Count"] for e in self._table.list_entities(select=["Count"])]
