"""The app's tables: names (with ``TABLE_NAME_PREFIX``), clients, creation, recreation.

Private to :mod:`handlers.storage`: every other package goes through the typed stores.

A function's tables heal: when an operation finds its table gone (the account was recreated,
someone deleted it), the table is created again, a warning says so (once per table), and the
operation runs once more; a warm instance never keeps failing until it restarts. Read-only
tools (the audit commands) never create a table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

INCIDENTS = "incidents"
CLAIMS = "jobs"
REJECTIONS = "rejected"
TICKETS = "tickets"
COUNTERS = "retries"
CHECKPOINTS = "checkpoints"
APPROVALS = "approvals"
SWEEPS = "sweeps"
DIGESTS = "digests"
ALL = (INCIDENTS, CLAIMS, REJECTIONS, TICKETS, COUNTERS, CHECKPOINTS, APPROVALS, SWEEPS, DIGESTS)
#: Table calls whose results are read lazily, page by page.
_PAGED = frozenset({"list_entities", "query_entities"})

log = logging.getLogger("backup_responder.storage")


def table_missing(error: ResourceNotFoundError) -> bool:
    """Whether a 404 means the table itself is gone (not just an entity)."""
    code = str(getattr(error, "error_code", "") or "")
    return code.lower().endswith("table_not_found") or "TableNotFound" in f"{code} {error}"


class _HealingTable:
    """A ``TableClient`` whose calls recreate the table once when they find it gone."""

    def __init__(self, client: TableClient, recreate: Callable[[], None]) -> None:
        self._client = client
        self._recreate = recreate

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = attribute(*args, **kwargs)
            except ResourceNotFoundError as error:
                if not table_missing(error):
                    raise
                self._recreate()
                result = attribute(*args, **kwargs)
            return _HealingPages(result, self._recreate) if name in _PAGED else result

        return call


class _HealingPages:
    """Entities read lazily; a table found gone on the first page is recreated (and empty)."""

    def __init__(self, paged: Any, recreate: Callable[[], None]) -> None:
        self._paged = paged
        self._recreate = recreate

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._paged
        except ResourceNotFoundError as error:
            if not table_missing(error):
                raise
            self._recreate()

    def by_page(self, **kwargs: Any) -> Any:
        return self._paged.by_page(**kwargs)


class TableSet:
    """Table clients by logical name, made once and shared by the stores.

    :param heal: recreate a table an operation finds gone (the function's storage).
    """

    def __init__(self, service: TableServiceClient, prefix: str = "", heal: bool = False) -> None:
        self._service = service
        self._prefix = prefix
        self._heal = heal
        self._clients: dict[str, Any] = {}
        self._recreated: set[str] = set()

    def name(self, table: str) -> str:
        """The table's name in the account."""
        return f"{self._prefix}{table}"

    def __getitem__(self, table: str) -> Any:
        if table not in self._clients:
            client = self._service.get_table_client(self.name(table))
            self._clients[table] = (
                _HealingTable(client, lambda: self._recreate(table)) if self._heal else client
            )
        return self._clients[table]

    def ensure(self, tables: tuple[str, ...] = ALL) -> None:
        """Create the tables that are missing."""
        for table in tables:
            self._service.create_table_if_not_exists(self.name(table))

    def _recreate(self, table: str) -> None:
        if table not in self._recreated:
            self._recreated.add(table)
            log.warning("table %s was missing (storage lost?); created it again", self.name(table))
        self._service.create_table_if_not_exists(self.name(table))
