"""Incidents (``incidents`` table): PartitionKey the VM name, RowKey inverted time + job id.

The audit trail, newest first per VM. Every change after the first write is ETag-guarded
(:mod:`handlers.storage.etag`), so concurrent workers never overwrite each other's log lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from handlers.core.incident import Incident
from handlers.storage.etag import guarded_update
from handlers.storage.keys import inverted_ticks
from handlers.storage.tables import INCIDENTS, TableSet


class IncidentStore:
    """Reads and guarded writes of incidents."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[INCIDENTS]

    def insert(self, incident: Incident) -> bool:
        """Write a new incident; False (nothing written) when one is stored at its keys."""
        try:
            self._table.create_entity(incident.to_entity())
        except ResourceExistsError:
            return False
        return True

    def exists(self, pk: str, rk: str) -> bool:
        try:
            self._table.get_entity(pk, rk, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    def get(self, pk: str, rk: str) -> Incident:
        """The incident as stored now.

        :raises ResourceNotFoundError: there is none at these keys.
        """
        return Incident.from_entity(dict(self._table.get_entity(pk, rk)))

    def find(self, pk: str, rk: str) -> Incident | None:
        """The incident at these keys, or None."""
        try:
            return self.get(pk, rk)
        except ResourceNotFoundError:
            return None

    def mutate(self, pk: str, rk: str, change: Callable[[Incident], None]) -> Incident:
        """Apply ``change`` to the stored incident under ETag protection; returns it as written.

        :raises handlers.storage.errors.ContentionError: it kept changing; retry the delivery.
        """
        written: list[Incident] = []

        def apply(entity: dict[str, Any]) -> None:
            incident = Incident.from_entity(entity)
            change(incident)
            entity.clear()
            entity.update(incident.to_entity())
            written[:] = [incident]

        guarded_update(self._table, pk, rk, apply)
        return written[0]

    def query(
        self, odata: str = "", parameters: dict[str, Any] | None = None
    ) -> Iterator[Incident]:
        """Incidents matching an OData filter (all when empty), in table order."""
        entities = (
            self._table.query_entities(odata, parameters=parameters or {})
            if odata
            else self._table.list_entities()
        )
        for entity in entities:
            yield Incident.from_entity(dict(entity))

    def of_same_item_and_rule(self, incident: Incident, since: datetime) -> list[Incident]:
        """Other incidents of ``incident``'s item (its partition) and rule that failed since
        ``since``, newest first: one partition query, bounded by the time in the RowKey."""
        found = self.query(
            "PartitionKey eq @pk and Rule eq @rule and RowKey lt @bound and VaultId eq @vault",
            {
                "pk": incident.PartitionKey,
                "rule": incident.Rule,
                "bound": f"{int(inverted_ticks(since)) + 1:019d}",
                "vault": incident.VaultId,
            },
        )
        return [i for i in found if i.RowKey != incident.RowKey]

    def page(
        self,
        odata: str,
        parameters: dict[str, Any],
        size: int,
        continuation: dict[str, str | None] | None,
    ) -> tuple[list[Incident], dict[str, str | None] | None]:
        """One page of at most ``size`` incidents and the service's token for the next."""
        entities = (
            self._table.query_entities(odata, parameters=parameters, results_per_page=size)
            if odata
            else self._table.list_entities(results_per_page=size)
        )
        pages = entities.by_page(continuation_token=continuation)
        items = [Incident.from_entity(dict(e)) for e in next(pages, [])]
        return items, pages.continuation_token

    def replace(self, incident: Incident) -> None:
        """Write an incident whole, whatever is stored (seeding and repairs only)."""
        self._table.upsert_entity(incident.to_entity(), mode=UpdateMode.REPLACE)
