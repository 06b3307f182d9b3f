"""Claims: the idempotency record of each backup job (``jobs`` table).

PartitionKey: the first two characters of the job key; RowKey: the job key. A first delivery
inserts the claim if absent (``claimed``, with a lease); it is marked ``done`` once handled.
Every claim carries ``ExpiresAt``: :meth:`ClaimStore.expire` deletes expired claims in bounded
batches, so the table does not grow for ever. Until then any redelivery of the job, from any
source, is recognised as a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from handlers.storage.errors import DeliveryInFlightError
from handlers.storage.keys import safe_key
from handlers.storage.tables import CLAIMS, TableSet


class ClaimKind:
    """What claiming a job found."""

    NEW = "new"
    RESUMED = "resumed"
    DUPLICATE = "duplicate"


class ClaimState:
    """A claim record's state."""

    CLAIMED = "claimed"
    DONE = "done"


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a job, with where its incident is (or will be) stored."""

    kind: str
    job_id: str
    incident_pk: str
    incident_rk: str

    @property
    def incident_keys(self) -> tuple[str, str]:
        return self.incident_pk, self.incident_rk


def claim_keys(job_id: str) -> tuple[str, str]:
    """PartitionKey and RowKey of a job's claim."""
    row = safe_key(job_id)
    return row[:2], row


class ClaimStore:
    """Claims of jobs: insert-if-absent, leases, completion, expiry."""

    def __init__(self, tableset: TableSet, retention: timedelta) -> None:
        self._table = tableset[CLAIMS]
        self._retention = retention

    def claim(
        self, job_id: str, incident_keys: tuple[str, str], now: datetime, lease: timedelta
    ) -> Claim:
        """Claim ``job_id`` for this delivery.

        :raises DeliveryInFlightError: another delivery holds a live claim on the job.
        """
        pk, rk = claim_keys(job_id)
        record = {
            "PartitionKey": pk,
            "RowKey": rk,
            "JobId": job_id,
            "State": ClaimState.CLAIMED,
            "LeaseUntil": now + lease,
            "ExpiresAt": now + self._retention,
            "IncidentPK": incident_keys[0],
            "IncidentRK": incident_keys[1],
        }
        try:
            self._table.create_entity(record)
            return Claim(ClaimKind.NEW, job_id, *incident_keys)
        except ResourceExistsError:
            existing = self._table.get_entity(pk, rk)
        keys = (existing["IncidentPK"], existing["IncidentRK"])
        if existing["State"] == ClaimState.DONE:
            return Claim(ClaimKind.DUPLICATE, job_id, *keys)
        if existing["LeaseUntil"] > now:
            raise DeliveryInFlightError(f"job {job_id} is being handled by another delivery")
        existing["LeaseUntil"] = now + lease
        try:
            self._table.update_entity(
                existing,
                mode=UpdateMode.MERGE,
                etag=existing.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise DeliveryInFlightError(f"job {job_id} was taken over meanwhile") from None
        return Claim(ClaimKind.RESUMED, job_id, *keys)

    def complete(self, claim: Claim) -> None:
        """Mark the job handled: later deliveries are duplicates."""
        pk, rk = claim_keys(claim.job_id)
        self._table.update_entity(
            {"PartitionKey": pk, "RowKey": rk, "State": ClaimState.DONE}, mode=UpdateMode.MERGE
        )

    def release(self, claim: Claim, now: datetime) -> None:
        """End this delivery's lease early: it gives up for now, and the next delivery may take
        the job over at once instead of waiting for the lease to run out."""
        pk, rk = claim_keys(claim.job_id)
        self._table.update_entity(
            {"PartitionKey": pk, "RowKey": rk, "LeaseUntil": now}, mode=UpdateMode.MERGE
        )

    def incident_keys(self, job_id: str) -> tuple[str, str] | None:
        """Where the incident of ``job_id`` is stored, or None for a job never claimed."""
        try:
            record = self._table.get_entity(*claim_keys(job_id))
        except ResourceNotFoundError:
            return None
        return record["IncidentPK"], record["IncidentRK"]

    def stale(self, now: datetime, limit: int = 1000) -> list[dict[str, Any]]:
        """Claims still ``claimed`` whose lease ran out: deliveries that died and were not
        redelivered (at most ``limit``)."""
        found = self._table.query_entities(
            "State eq @claimed and LeaseUntil lt @now",
            parameters={"claimed": ClaimState.CLAIMED, "now": now},
            select=["JobId", "LeaseUntil"],
        )
        return [dict(e) for _, e in zip(range(limit), found, strict=False)]

    def states(self) -> dict[str, str]:
        """Every claim's state by job id (for operators' checks and tests)."""
        return {
            e["JobId"]: e["State"] for e in self._table.list_entities(select=["JobId", "State"])
        }

    def expire(self, now: datetime, limit: int) -> int:
        """Delete at most ``limit`` claims that expired before ``now``; returns how many.

        Only ``done`` claims expire: a claim still ``claimed`` belongs to a delivery that has
        not finished (it is taken over after its lease), and is kept until it is done.
        """
        expired = self._table.query_entities(
            "ExpiresAt lt @now and State eq @done",
            parameters={"now": now, "done": ClaimState.DONE},
            select=["PartitionKey", "RowKey"],
            results_per_page=min(limit, 1000),
        )
        deleted = 0
        for entity in expired:
            if deleted >= limit:
                break
            self._table.delete_entity(entity["PartitionKey"], entity["RowKey"])
            deleted += 1
        return deleted
