"""Storage: the only place that talks to Table Storage and Storage queues, through typed stores.

May import ``handlers.core`` only. :class:`Storage` is the public face; the modules behind it
each own one table (see the README's "Tables").
"""

from __future__ import annotations

from datetime import timedelta

from handlers.core.incident import Incident
from handlers.core.settings import Settings
from handlers.storage.approvals import ApprovalStore
from handlers.storage.checkpoints import CheckpointStore
from handlers.storage.claims import Claim, ClaimKind, ClaimState, ClaimStore
from handlers.storage.clients import (
    CredentialSource,
    blob_container,
    queue_client,
    table_service,
)
from handlers.storage.counters import CounterStore
from handlers.storage.deadletters import DeadLetter, DeadLetterBlob, DeadLetterStore
from handlers.storage.digests import DigestStore
from handlers.storage.errors import ContentionError, DeliveryInFlightError, RetryLaterError
from handlers.storage.incidents import IncidentStore
from handlers.storage.queues import RetryQueue
from handlers.storage.rejections import RejectionStore
from handlers.storage.sweeps import SweepStore
from handlers.storage.tables import TableSet
from handlers.storage.tickets import TicketStore

__all__ = [
    "Claim",
    "ClaimKind",
    "ClaimState",
    "ContentionError",
    "DeadLetter",
    "DeadLetterBlob",
    "DeadLetterStore",
    "DeliveryInFlightError",
    "RetryLaterError",
    "RetryQueue",
    "Storage",
]


class Storage:
    """Every store of the app over one table service (names take ``TABLE_NAME_PREFIX``).

    :param service: a ``TableServiceClient`` (see :func:`handlers.storage.clients.table_service`).
    :param claim_retention: how long a handled job's claim is kept (redeliveries recognised).
    :param heal: create tables again when an operation finds them gone (the function does;
        read-only tools never create a table).
    """

    def __init__(
        self,
        service: object,
        prefix: str = "",
        claim_retention: timedelta = timedelta(days=30),
        *,
        heal: bool = False,
    ) -> None:
        self._tables = TableSet(service, prefix, heal)  # type: ignore[arg-type]
        self.claims = ClaimStore(self._tables, claim_retention)
        self.incidents = IncidentStore(self._tables)
        self.rejections = RejectionStore(self._tables)
        self.tickets = TicketStore(self._tables)
        self.counters = CounterStore(self._tables)
        self.checkpoints = CheckpointStore(self._tables)
        self.approvals = ApprovalStore(self._tables)
        self.sweeps = SweepStore(self._tables)
        self.digests = DigestStore(self._tables)

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: CredentialSource, *, heal: bool = False
    ) -> Storage:
        """The app's storage (tables are created only by :meth:`ensure_tables`, or healed)."""
        return cls(
            table_service(settings, credential),
            settings.table_name_prefix,
            timedelta(days=settings.claim_retention_days),
            heal=heal,
        )

    def ensure_tables(self) -> None:
        """Create the tables that are missing (the function does; read-only tools do not)."""
        self._tables.ensure()

    def table_name(self, table: str) -> str:
        """The account's name of a logical table (for messages and tools)."""
        return self._tables.name(table)

    def find_incident(self, incident_id: str) -> Incident | None:
        """An incident by its id (the job id), through the job's claim."""
        keys = self.claims.incident_keys(incident_id)
        return self.incidents.find(*keys) if keys else None


def dead_letters(settings: Settings, credential: CredentialSource) -> DeadLetterStore:
    """Event Grid's dead-letter container (``DEADLETTER_CONTAINER``)."""
    return DeadLetterStore(blob_container(settings, settings.deadletter_container, credential))


def retry_queue(settings: Settings, credential: CredentialSource) -> RetryQueue:
    """The queue of delayed retries and follow-ups (created on first use)."""
    return RetryQueue(queue_client(settings, settings.retry_queue, credential))


def poison_queue(settings: Settings, credential: CredentialSource) -> RetryQueue:
    """Where the Functions host parks a retry message it gave up on (``{queue}-poison``)."""
    return RetryQueue(queue_client(settings, f"{settings.retry_queue}-poison", credential))
