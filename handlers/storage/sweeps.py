"""Orphan sweep runs (``sweeps`` table): one row per run, newest first.

PartitionKey ``sweep``; RowKey the run's inverted start time. A row holds the run's counts and
its findings (JSON, bounded), so health, the digest and an operator can see what the last sweep
found without running another.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from handlers.storage.keys import inverted_ticks
from handlers.storage.tables import SWEEPS, TableSet

PARTITION = "sweep"
#: Longest findings text kept on a row (a Table string holds 32K UTF-16 code units).
MAX_FINDINGS = 30_000


class SweepStore:
    """Every sweep run, newest first."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[SWEEPS]

    def record(self, started: datetime, findings: str, **counts: Any) -> None:
        """Keep one run: when it started, its counts and its findings (JSON text)."""
        if len(findings) > MAX_FINDINGS:  # keep valid JSON: say it was cut, keep the counts
            findings = '{"truncated": true}'
        self._table.upsert_entity(
            {
                "PartitionKey": PARTITION,
                "RowKey": inverted_ticks(started),
                "StartedAt": started,
                "Findings": findings,
                **counts,
            }
        )

    def latest(self) -> dict[str, Any] | None:
        """The newest run, or None before the first one."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": PARTITION}, results_per_page=1
        )
        try:
            return next((dict(row) for row in rows), None)
        except ResourceNotFoundError:  # no table yet: read-only tools never create it
            return None
