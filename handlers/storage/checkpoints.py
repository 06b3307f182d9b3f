"""Watcher checkpoints and poll outcomes (``checkpoints`` table).

Per vault (PartitionKey the vault, RowKey ``watcher``): the latest failed-job end time
published (the checkpoint), and how its polls went (last poll, last success, consecutive
failures, last error), for health; per subscription, how the listing of its vaults went.
One more row (``_watcher``/``run``) keeps the last run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from handlers.storage.etag import guarded_update
from handlers.storage.keys import safe_key
from handlers.storage.tables import CHECKPOINTS, TableSet

ROW = "watcher"
#: The watcher's own row: no vault key starts with "_" (they start with an escaped "/").
RUN_KEYS = ("_watcher", "run")
MAX_ERROR = 1_000


class CheckpointStore:
    """Latest published job end time per vault, and the health of the watcher's polls."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[CHECKPOINTS]

    def get(self, vault_id: str) -> datetime | None:
        try:
            return self._table.get_entity(safe_key(vault_id), ROW).get("LastEndTime")
        except ResourceNotFoundError:
            return None

    def set(self, vault_id: str, moment: datetime) -> None:
        self._table.upsert_entity(
            {
                "PartitionKey": safe_key(vault_id),
                "RowKey": ROW,
                "LastEndTime": moment,
                "VaultId": vault_id,
            }
        )

    def record_poll(self, vault_id: str, now: datetime, error: str = "") -> None:
        """Note one poll of ``vault_id`` (a subscription's id for the listing of its vaults):
        its time, and a success or the error that stopped it."""

        def note(row: dict[str, Any]) -> None:
            row.update(VaultId=vault_id, LastPollAt=now)
            if error:
                row["ConsecutiveFailures"] = int(row.get("ConsecutiveFailures", 0)) + 1
                row["LastError"] = error[:MAX_ERROR]
            else:
                row.update(LastSuccessAt=now, ConsecutiveFailures=0, LastError="")

        guarded_update(self._table, safe_key(vault_id), ROW, note, initial={})

    def record_run(self, started: datetime, ended: datetime, **outcome: Any) -> None:
        """Note one whole watcher run (published events, vault errors, whether it deferred)."""
        self._table.upsert_entity(
            {
                "PartitionKey": RUN_KEYS[0],
                "RowKey": RUN_KEYS[1],
                "StartedAt": started,
                "EndedAt": ended,
                **outcome,
            }
        )

    def last_run(self) -> dict[str, Any] | None:
        """The last watcher run, or None before the first one."""
        try:
            return dict(self._table.get_entity(*RUN_KEYS))
        except ResourceNotFoundError:
            return None

    def polls(self) -> list[dict[str, Any]]:
        """Every vault's (and subscription vault listing's) poll record."""
        rows = self._table.query_entities("RowKey eq @row", parameters={"row": ROW})
        return [dict(row) for row in rows if "LastPollAt" in row]
