"""Open approvals (``approvals`` table): one row per incident whose stop protection waits for a
person, or whose decision is not carried out yet. PartitionKey ``open``, RowKey the incident;
``CheckAt`` says when the timer must look at it next (the request's deadline, or when a decision
being carried out would be presumed stranded), so a run reads the rows that are due, however
many others wait.

The incident holds the approval itself (:class:`~handlers.core.incident.Approval`, changed
under the incident's ETag); this table only says which incidents the ``expire_approvals`` timer
must look at, so it never scans the incidents table. A row is written before the approval is
requested and removed only once what follows the decision is done: a crash in between leaves
the row, and the timer finishes the work.
"""

from __future__ import annotations

from datetime import datetime
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

    def add(self, incident_id: str, pk: str, rk: str, check_at: datetime) -> None:
        """Remember that ``incident_id`` (at ``pk``/``rk``) has an open approval, to be looked
        at from ``check_at`` on (idempotent; a later call sets a new time)."""
        row = {"PartitionKey": PARTITION, "RowKey": safe_key(incident_id)}
        row.update(IncidentId=incident_id, IncidentPk=pk, IncidentRk=rk, CheckAt=check_at)
        self._table.upsert_entity(row, mode=UpdateMode.REPLACE)

    def remove(self, incident_id: str) -> None:
        """Forget it (nothing happens when it is gone already)."""
        try:
            self._table.delete_entity(PARTITION, safe_key(incident_id))
        except ResourceNotFoundError:
            return

    def open(self, limit: int, due_by: datetime | None = None) -> list[dict[str, Any]]:
        """At most ``limit`` open approvals (those due by ``due_by``, when given):
        ``IncidentId``, ``IncidentPk``, ``IncidentRk``, ``CheckAt``."""
        query, parameters = "PartitionKey eq @pk", {"pk": PARTITION}
        if due_by is not None:
            query, parameters = f"{query} and CheckAt le @due", {**parameters, "due": due_by}
        rows = self._table.query_entities(query, parameters=parameters, results_per_page=limit)
        found = []
        for row in rows:
            found.append(dict(row))
            if len(found) >= limit:
                break
        return found
