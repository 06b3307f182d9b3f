"""Watcher checkpoints (``checkpoints`` table): the latest failed-job end time published per
vault. PartitionKey the vault, RowKey ``watcher``.
"""

from __future__ import annotations

from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError

from handlers.storage.keys import safe_key
from handlers.storage.tables import CHECKPOINTS, TableSet

ROW = "watcher"


class CheckpointStore:
    """Latest published job end time per vault."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[CHECKPOINTS]

    def get(self, vault_id: str) -> datetime | None:
        try:
            return self._table.get_entity(safe_key(vault_id), ROW)["LastEndTime"]
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
