"""Orphan sweep runs (``sweeps`` table): one row per run, newest first, and one row per orphan.

PartitionKey ``sweep``; RowKey the run's inverted start time. A run's row holds its counts,
where the next run resumes (``NextVault``/``NextItem``, see :mod:`handlers.sweep.orphans`) and
its other findings (moved VMs, skipped scopes, what it left: JSON, bounded). Each orphan it
found is a row of its own (PartitionKey ``orphans-{run's RowKey}``, RowKey its number), so
health, the digest and an operator see every orphan however many there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from handlers.storage.keys import inverted_ticks
from handlers.storage.tables import SWEEPS, TableSet

PARTITION = "sweep"
#: Longest findings text kept on a row (a Table string holds 32K UTF-16 code units).
MAX_FINDINGS = 30_000
#: Entities per transaction (Table Storage's limit).
BATCH = 100


def _orphans_partition(run_key: str) -> str:
    return f"orphans-{run_key}"


@dataclass(frozen=True)
class SweepRun:
    """A recorded run and the orphans it found without stopping them.

    :ivar row: the run's row (its counts, ``Findings``, the cursor).
    :ivar waiting: the rows of the orphans it did not stop.
    :ivar unlisted: orphans it counted as not stopped that have no row (their rows were not
        all written): shown as a number, never as "none".
    """

    row: dict[str, Any]
    waiting: list[dict[str, Any]]
    unlisted: int


class SweepStore:
    """Every sweep run, newest first."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[SWEEPS]

    def record(
        self,
        started: datetime,
        findings: str,
        orphans: Iterable[Mapping[str, Any]] = (),
        **counts: Any,
    ) -> None:
        """Keep one run: its orphans (one row each, written first), then its row: when it
        started, its counts and its other findings (JSON text)."""
        run_key = inverted_ticks(started)
        rows = [
            {"PartitionKey": _orphans_partition(run_key), "RowKey": f"{n:06d}", **orphan}
            for n, orphan in enumerate(orphans)
        ]
        for start in range(0, len(rows), BATCH):
            self._table.submit_transaction([("upsert", row) for row in rows[start : start + BATCH]])
        if len(findings) > MAX_FINDINGS:  # keep valid JSON: say it was cut, keep the counts
            findings = '{"truncated": true}'
        self._table.upsert_entity(
            {
                "PartitionKey": PARTITION,
                "RowKey": run_key,
                "StartedAt": started,
                "Findings": findings,
                **counts,
            }
        )

    def recent(self, count: int) -> list[dict[str, Any]]:
        """The newest ``count`` runs' rows, newest first (none before the first run, or when
        the table does not exist yet: read-only tools never create it)."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": PARTITION}, results_per_page=count
        )
        found: list[dict[str, Any]] = []
        try:
            for row in rows:
                found.append(dict(row))
                if len(found) == count:
                    break
        except ResourceNotFoundError:
            return []
        return found

    def latest(self) -> dict[str, Any] | None:
        """The newest run's row, or None before the first one."""
        return next(iter(self.recent(1)), None)

    def orphans(self, run: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every orphan row of ``run``, in the order it found them."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": _orphans_partition(run["RowKey"])}
        )
        try:
            return sorted((dict(row) for row in rows), key=lambda row: row["RowKey"])
        except ResourceNotFoundError:
            return []

    def last_run(self) -> SweepRun | None:
        """The newest run with the orphans it left protected, or None before the first."""
        run = self.latest()
        if run is None:
            return None
        waiting = [o for o in self.orphans(run) if not o.get("Stopped")]
        counted = run.get("Orphans", 0) - run.get("Stopped", 0)
        return SweepRun(run, waiting, max(counted - len(waiting), 0))
