"""The app's tables: names (with ``TABLE_NAME_PREFIX``), clients, creation.

Private to :mod:`handlers.storage`: every other package goes through the typed stores.
"""

from __future__ import annotations

from azure.data.tables import TableClient, TableServiceClient

INCIDENTS = "incidents"
CLAIMS = "jobs"
REJECTIONS = "rejected"
TICKETS = "tickets"
COUNTERS = "retries"
CHECKPOINTS = "checkpoints"
ALL = (INCIDENTS, CLAIMS, REJECTIONS, TICKETS, COUNTERS, CHECKPOINTS)


class TableSet:
    """Table clients by logical name, made once and shared by the stores."""

    def __init__(self, service: TableServiceClient, prefix: str = "") -> None:
        self._service = service
        self._prefix = prefix
        self._clients: dict[str, TableClient] = {}

    def name(self, table: str) -> str:
        """The table's name in the account."""
        return f"{self._prefix}{table}"

    def __getitem__(self, table: str) -> TableClient:
        if table not in self._clients:
            self._clients[table] = self._service.get_table_client(self.name(table))
        return self._clients[table]

    def ensure(self, tables: tuple[str, ...] = ALL) -> None:
        """Create the tables that are missing."""
        for table in tables:
            self._service.create_table_if_not_exists(self.name(table))
