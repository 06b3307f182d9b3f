"""Ticket rows (``tickets`` table): one open ticket per protected item and rule.

PartitionKey: the item + rule key. RowKey ``open`` is the pointer to the one open ticket,
inserted if absent (which is what makes "one open ticket" hold under concurrency); the
ticket itself has RowKey = its id.
"""

from __future__ import annotations

from collections.abc import Callable
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

    def rows(self, status: str = "") -> list[dict[str, Any]]:
        """Every ticket row (not the pointers), or those with ``status``."""
        entities = (
            self._table.query_entities("Status eq @status", parameters={"status": status})
            if status
            else self._table.list_entities()
        )
        return [dict(e) for e in entities if e["RowKey"] != OPEN_POINTER]
