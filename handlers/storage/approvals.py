"""Open approvals (``approvals`` table): one row per incident whose stop protection waits for a
person, or whose decision is not carried out yet. PartitionKey ``open``, RowKey the incident.

The incident holds the approval itself (:class:`~handlers.core.incident.Approval`, changed
under the incident's ETag); this table only says which incidents the ``expire_approvals`` timer
must look at, so it never scans the incidents table. A row is written before the approval is
requested and removed only once what follows the decision is done: a crash in between leaves
the row, and the timer finishes the work.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from handlers.storage.keys import safe_key
from handlers.storage.tables import APPROVALS, TableSet

PARTITION = "open"


class ApprovalStore:
    """The incidents with an open approval."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[APPROVALS]

    def add(self, incident_id: str, pk: str, rk: str) -> None:
        """Remember that ``incident_id`` (at ``pk``/``rk``) has an open approval (idempotent)."""
        row = {"PartitionKey": PARTITION, "RowKey": safe_key(incident_id)}
        row.update(IncidentId=incident_id, IncidentPk=pk, IncidentRk=rk)
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def remove(self, incident_id: str) -> None:
        """Forget it (nothing happens when it is gone already)."""
        try:
            self._table.delete_entity(PARTITION, safe_key(incident_id))
        except ResourceNotFoundError:
            return

    def open(self, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` open approvals: ``IncidentId``, ``IncidentPk``, ``IncidentRk``."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": PARTITION}, results_per_page=limit
        )
        found = []
        for row in rows:
            found.append(dict(row))
            if len(found) >= limit:
                break
        return found
