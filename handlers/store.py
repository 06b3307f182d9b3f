"""Azure Table Storage: incidents, the idempotency record per job, rejected events.

Tables (names take ``TABLE_NAME_PREFIX``):

- ``incidents``: PartitionKey the VM name, RowKey inverted time + job id; the audit trail,
  newest first per VM.
- ``jobs``: PartitionKey the first two characters of the job key, RowKey the job id; the
  idempotency record (claimed → done), written insert-if-absent.
- ``rejected``: PartitionKey the UTC day ``YYYYMMDD``, RowKey inverted time + random id;
  inputs that could not be handled, with the reason.
- ``tickets`` (:mod:`handlers.tickets`), ``retries`` (:mod:`handlers.actions.retry`),
  ``checkpoints`` (:mod:`handlers.watcher`).

A first delivery costs three round trips: claim the job (conditional insert), write the
incident, mark the claim done. A duplicate costs a failed insert, a read of the claim and an
ETag-guarded update of the incident's occurrence count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from handlers.events import Rejection
from handlers.incident import Incident
from handlers.keys import inverted_ticks, safe_key

INCIDENTS = "incidents"
JOBS = "jobs"
REJECTED = "rejected"
TICKETS = "tickets"
RETRIES = "retries"
CHECKPOINTS = "checkpoints"
TABLES = (INCIDENTS, JOBS, REJECTED, TICKETS, RETRIES, CHECKPOINTS)

CLAIMED = "claimed"
DONE = "done"

_CONFLICT_RETRIES = 8


class DeliveryInFlightError(RuntimeError):
    """Another delivery of the same job holds a live claim; retry this one later.

    Raised out of the function so the platform redelivers: by then the first delivery has
    finished (and this one is a duplicate) or its lease has expired (and this one takes over).
    """


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a job: ``new``, ``resumed`` (taken over) or ``duplicate``."""

    kind: str
    job_id: str
    incident_pk: str
    incident_rk: str


def _job_keys(job_id: str) -> tuple[str, str]:
    row = safe_key(job_id)
    return row[:2], row


class IncidentStore:
    """Typed access to the app's tables (``service`` comes from :mod:`handlers.clients`)."""

    def __init__(self, service: TableServiceClient, prefix: str = "") -> None:
        self._service = service
        self._prefix = prefix
        self._tables: dict[str, TableClient] = {}

    def table_name(self, table: str) -> str:
        return f"{self._prefix}{table}"

    def table(self, table: str) -> TableClient:
        if table not in self._tables:
            self._tables[table] = self._service.get_table_client(self.table_name(table))
        return self._tables[table]

    def ensure_tables(self, tables: tuple[str, ...] = TABLES) -> None:
        """Create the tables that are missing (once per process is enough)."""
        for table in tables:
            self._service.create_table_if_not_exists(self.table_name(table))

    # -- idempotency -------------------------------------------------------------------

    def claim(
        self, job_id: str, incident_keys: tuple[str, str], now: datetime, lease_seconds: int
    ) -> Claim:
        """Claim ``job_id`` for this delivery (insert-if-absent on the ``jobs`` table).

        :raises DeliveryInFlightError: another delivery holds a live claim on the job.
        """
        pk, rk = _job_keys(job_id)
        lease_until = now + timedelta(seconds=lease_seconds)
        record = {
            "PartitionKey": pk,
            "RowKey": rk,
            "JobId": job_id,
            "State": CLAIMED,
            "LeaseUntil": lease_until,
            "IncidentPK": incident_keys[0],
            "IncidentRK": incident_keys[1],
        }
        jobs = self.table(JOBS)
        try:
            jobs.create_entity(record)
            return Claim("new", job_id, *incident_keys)
        except ResourceExistsError:
            existing = jobs.get_entity(pk, rk)
        keys = (existing["IncidentPK"], existing["IncidentRK"])
        if existing["State"] == DONE:
            return Claim("duplicate", job_id, *keys)
        if existing["LeaseUntil"] > now:
            raise DeliveryInFlightError(f"job {job_id} is being handled by another delivery")
        existing["LeaseUntil"] = lease_until
        try:
            jobs.update_entity(
                existing,
                mode=UpdateMode.MERGE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise DeliveryInFlightError(f"job {job_id} was taken over meanwhile") from None
        return Claim("resumed", job_id, *keys)

    def complete(self, claim: Claim) -> None:
        """Mark the job handled: later deliveries are duplicates."""
        pk, rk = _job_keys(claim.job_id)
        self.table(JOBS).update_entity(
            {"PartitionKey": pk, "RowKey": rk, "State": DONE}, mode=UpdateMode.MERGE
        )

    # -- incidents ---------------------------------------------------------------------

    def save_incident(self, incident: Incident) -> None:
        """Write an incident whole (a resumed delivery rewrites the same keys)."""
        self.table(INCIDENTS).upsert_entity(incident.to_entity(), mode=UpdateMode.REPLACE)

    def has_incident(self, pk: str, rk: str) -> bool:
        try:
            self.table(INCIDENTS).get_entity(pk, rk, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True

    def get_incident(self, pk: str, rk: str) -> tuple[Incident, str]:
        """An incident and its ETag, for a guarded update."""
        entity = self.table(INCIDENTS).get_entity(pk, rk)
        return Incident.from_entity(dict(entity)), entity.metadata["etag"]

    def update_incident(self, incident: Incident, etag: str) -> None:
        """Replace an incident only if nobody changed it since it was read.

        :raises ResourceModifiedError: it was changed; read it again and redo the change.
        """
        self.table(INCIDENTS).update_entity(
            incident.to_entity(),
            mode=UpdateMode.REPLACE,
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )

    def mutate_incident(self, pk: str, rk: str, change: Callable[[Incident], None]) -> Incident:
        """Apply ``change`` to an incident under ETag protection, re-reading on conflict.

        Two workers changing one incident never overwrite each other: the loser reads the
        winner's version and applies its change again.
        """
        for _ in range(_CONFLICT_RETRIES):
            incident, etag = self.get_incident(pk, rk)
            change(incident)
            try:
                self.update_incident(incident, etag)
                return incident
            except ResourceModifiedError:
                continue
        raise DeliveryInFlightError(f"incident {pk}/{rk} keeps changing; retry later")

    def record_repeat(self, claim: Claim, source: str, now: datetime) -> Incident:
        """Count one more delivery of an already handled job on its incident."""

        def count(incident: Incident) -> None:
            incident.Occurrences += 1
            incident.LastSeen = now
            incident.Source = ",".join(sorted(set(incident.Source.split(",")) | {source}))

        return self.mutate_incident(claim.incident_pk, claim.incident_rk, count)

    def find_incident(self, incident_id: str) -> Incident | None:
        """Look an incident up by its id (the job id) through the ``jobs`` table."""
        try:
            record = self.table(JOBS).get_entity(*_job_keys(incident_id))
            return self.get_incident(record["IncidentPK"], record["IncidentRK"])[0]
        except ResourceNotFoundError:
            return None

    def incidents(
        self, query: str = "", parameters: dict[str, Any] | None = None
    ) -> Iterator[Incident]:
        """Incidents matching an OData filter (all when empty)."""
        table = self.table(INCIDENTS)
        entities = (
            table.query_entities(query, parameters=parameters or {})
            if query
            else table.list_entities()
        )
        for entity in entities:
            yield Incident.from_entity(dict(entity))

    # -- rejected inputs ---------------------------------------------------------------

    def record_rejection(self, rejection: Rejection) -> str:
        """Keep a rejected input with its reason; returns the row's id."""
        at = rejection.received_at.astimezone(UTC)
        row = f"{inverted_ticks(at)}_{uuid.uuid4().hex}"
        self.table(REJECTED).create_entity(
            {
                "PartitionKey": at.strftime("%Y%m%d"),
                "RowKey": row,
                "Reason": rejection.reason,
                "Source": rejection.source,
                "EventId": rejection.event_id,
                "Payload": rejection.payload,
                "ReceivedAt": at,
            }
        )
        return row

    def rejections(self) -> Iterator[dict[str, Any]]:
        for entity in self.table(REJECTED).list_entities():
            yield dict(entity)
