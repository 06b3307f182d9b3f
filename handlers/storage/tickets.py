"""Ticket rows (``tickets`` table): one open ticket per protected item and rule.

PartitionKey: the item + rule key. RowKey ``open`` is the pointer to the one open ticket,
inserted if absent (which is what makes "one open ticket" hold under concurrency); the
ticket itself has RowKey = its id. A resolved ticket keeps its row, so a failure that comes
back can reopen it (the pointer then names it again).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from handlers.storage.etag import guarded_update
from handlers.storage.tables import TICKETS, TableSet

OPEN_POINTER = "open"


class TicketStatus:
    """A ticket row's status."""

    OPEN = "open"
    RESOLVED = "resolved"


def resolved_at(row: dict[str, Any]) -> datetime:
    """When a ticket row was resolved (rows resolved before ``ResolvedAt`` was kept: their
    last update, which was the resolution)."""
    return row.get("ResolvedAt") or row["UpdatedAt"]


class TicketStore:
    """The open-ticket pointer and the ticket rows of each item + rule."""

    def __init__(self, tableset: TableSet) -> None:
        self._table = tableset[TICKETS]

    def open_ticket_id(self, pk: str, candidate: str) -> str:
        """The id of the open ticket of ``pk``: ``candidate`` when it becomes the open one."""
        try:
            self._table.create_entity(
                {"PartitionKey": pk, "RowKey": OPEN_POINTER, "TicketId": candidate}
            )
            return candidate
        except ResourceExistsError:
            return self._table.get_entity(pk, OPEN_POINTER)["TicketId"]

    def open_pointer(self, pk: str) -> str:
        """The id of the open ticket of ``pk`` (``""`` when none is open)."""
        try:
            return str(self._table.get_entity(pk, OPEN_POINTER)["TicketId"])
        except ResourceNotFoundError:
            return ""

    def create(self, row: dict[str, Any]) -> bool:
        """Insert a ticket row; False (nothing written) when it exists."""
        try:
            self._table.create_entity(row)
        except ResourceExistsError:
            return False
        return True

    def get(self, pk: str, ticket_id: str) -> dict[str, Any]:
        """:raises ResourceNotFoundError: no such ticket."""
        return dict(self._table.get_entity(pk, ticket_id))

    def update(
        self, pk: str, ticket_id: str, change: Callable[[dict[str, Any]], bool | None]
    ) -> dict[str, Any]:
        """Change a ticket row under ETag protection; returns it as written.

        :raises handlers.storage.errors.ContentionError: it kept changing; retry later.
        """
        return guarded_update(self._table, pk, ticket_id, change, mode=UpdateMode.MERGE)

    def close_pointer(self, pk: str) -> str:
        """Remove the open-ticket pointer of ``pk``; returns the ticket it pointed at (or
        ``""`` when there was none, or another worker closed it first)."""
        try:
            pointer = self._table.get_entity(pk, OPEN_POINTER)
            self._table.delete_entity(
                pk,
                OPEN_POINTER,
                etag=pointer.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceNotFoundError, ResourceModifiedError):
            return ""
        return pointer["TicketId"]

    def last_resolved(self, pk: str) -> dict[str, Any] | None:
        """The ticket of ``pk`` resolved last (one partition query), or None."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and Status eq @status",
            parameters={"pk": pk, "status": TicketStatus.RESOLVED},
        )
        found = [dict(r) for r in rows if r["RowKey"] != OPEN_POINTER]
        return max(found, key=resolved_at, default=None)

    def rows(self, status: str = "") -> list[dict[str, Any]]:
        """Every ticket row (not the pointers), or those with ``status``."""
        entities = (
            self._table.query_entities("Status eq @status", parameters={"status": status})
            if status
            else self._table.list_entities()
        )
        return [dict(e) for e in entities if e["RowKey"] != OPEN_POINTER]
