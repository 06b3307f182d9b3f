"""Counters with a limit (``retries`` table): attempts per item per day, starts per vault per
stagger window. Taking a unit is ETag-guarded, so a limit holds across concurrent workers.

A subject may also keep a *mark* (RowKey ``mark``): the latest period a unit was taken in
ahead of time (a vault's stagger windows are reserved in order), so a reservation starts
looking there instead of at every full period before it.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from handlers.storage.etag import guarded_update
from handlers.storage.keys import safe_key
from handlers.storage.tables import COUNTERS, TableSet

#: RowKey of a subject's mark (no period is spelled like it).
MARK = "mark"


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

    def mark(self, subject: str) -> str:
        """The subject's mark (a period), or ``""`` when it has none."""
        try:
            return str(self._table.get_entity(safe_key(subject), MARK).get("Period") or "")
        except ResourceNotFoundError:
            return ""

    def raise_mark(self, subject: str, period: str) -> None:
        """Move the subject's mark to ``period`` unless it is already there or later (periods
        compare as text: ``YYYYMMDDhhmm``)."""

        def later(row: dict[str, Any]) -> bool:
            if str(row.get("Period") or "") >= period:
                return False
            row["Period"] = period
            return True

        guarded_update(self._table, safe_key(subject), MARK, later, initial={})

    def count(self, subject: str, period: str) -> int:
        """What ``subject`` has counted in ``period`` (0 when nothing)."""
        try:
            return int(self._table.get_entity(safe_key(subject), period)["Count"])
        except ResourceNotFoundError:
            return 0

    def counts(self) -> list[int]:
        """Every counter's value (for checks and tests; marks are not counters)."""
        rows = self._table.list_entities(select=["RowKey", "Count"])
        return [e["Count"] for e in rows if e["RowKey"] != MARK]
