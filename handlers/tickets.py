"""Tickets: one open ticket per protected item and rule, in the ``tickets`` table and the
configured sinks. A repeat failure appends an occurrence to the open ticket.

``tickets`` table: PartitionKey is the item + rule key. RowKey ``open`` is the pointer to the
one open ticket (inserted if absent, which is what makes "one open ticket" hold under
concurrency); the ticket itself has RowKey = its id, the id of the incident that opened it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from handlers.incident import Incident
from handlers.keys import safe_key
from handlers.outbound import SinkError
from handlers.sinks import TicketContent, TicketSink
from handlers.store import TICKETS, IncidentStore

OPEN_POINTER = "open"
OPEN, RESOLVED = "open", "resolved"
MAX_BODY = 16_000


@dataclass
class TicketResult:
    """What happened to the ticket for one incident."""

    ticket_id: str
    created: bool
    refs: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def ticket_partition(incident: Incident) -> str:
    return safe_key(f"{incident.item.key}|{incident.Rule}")


def _facts(incident: Incident) -> dict[str, str]:
    return {
        "VM": incident.VmId or incident.VmName,
        "Vault": incident.VaultId,
        "Subscription": incident.SubscriptionId,
        "Backup job": incident.JobId,
        "Error code": incident.ErrorCodes or "(none)",
        "Error message": incident.ErrorMessage or "(none)",
        "Rule": f"{incident.Rule} ({incident.Category})",
    }


def ticket_content(
    incident: Incident, summary: str, language: str, ticket_id: str
) -> TicketContent:
    """The ticket for ``incident``, with remediation in ``language`` (``en`` or ``ja``)."""
    remediation = incident.RemediationJa if language == "ja" else incident.Remediation
    return TicketContent(
        ticket_id=ticket_id,
        incident_id=incident.IncidentId,
        title=f"Azure VM backup: {incident.RuleTitle} on {incident.VmName or '?'}",
        summary=summary,
        facts=_facts(incident),
        remediation=remediation,
        doc=incident.Doc,
        language=language,
        labels=("backup-responder", incident.Category, incident.Rule),
    )


class TicketDesk:
    """Opens, appends to and resolves tickets in the table and every configured sink."""

    def __init__(self, store: IncidentStore, sinks: list[TicketSink], language: str) -> None:
        self._table = store.table(TICKETS)
        self._sinks = sinks
        self._language = language

    def _claim_open_slot(self, pk: str, ticket_id: str) -> str:
        try:
            self._table.create_entity(
                {"PartitionKey": pk, "RowKey": OPEN_POINTER, "TicketId": ticket_id}
            )
            return ticket_id
        except ResourceExistsError:
            return self._table.get_entity(pk, OPEN_POINTER)["TicketId"]

    def open_or_append(self, incident: Incident, summary: str) -> TicketResult:
        """Open a ticket for ``incident``, or add it as an occurrence of the open one.

        Idempotent per incident: a redelivery never opens or appends twice.
        """
        pk = ticket_partition(incident)
        ticket_id = self._claim_open_slot(pk, incident.IncidentId)
        content = ticket_content(incident, summary, self._language, ticket_id)
        now = datetime.now(UTC)
        row = {
            "PartitionKey": pk,
            "RowKey": ticket_id,
            "TicketId": ticket_id,
            "Status": OPEN,
            "Title": content.title,
            "Rule": incident.Rule,
            "VmName": incident.VmName,
            "VaultName": incident.VaultName,
            "SubscriptionId": incident.SubscriptionId,
            "Incidents": json.dumps([incident.IncidentId]),
            "Occurrences": 1,
            "Body": content.plain_text()[:MAX_BODY],
            "Language": self._language,
            "Refs": "{}",
            "CreatedAt": now,
            "UpdatedAt": now,
        }
        try:
            self._table.create_entity(row)
        except ResourceExistsError:
            return self._append(pk, ticket_id, incident, content)
        result = TicketResult(ticket_id, created=True)
        for sink in self._sinks:
            try:
                result.refs[sink.name] = sink.open(content)
            except SinkError as error:
                result.errors.append(str(error))
        self._update(
            pk,
            ticket_id,
            {"Refs": json.dumps(result.refs), "SinkErrors": json.dumps(result.errors)},
        )
        return result

    def _append(
        self, pk: str, ticket_id: str, incident: Incident, content: TicketContent
    ) -> TicketResult:
        code = incident.ErrorCodes or "no code"
        note = f"Occurred again: backup job {incident.JobId} failed ({code})."
        for _ in range(8):
            row = self._table.get_entity(pk, ticket_id)
            incidents = json.loads(row["Incidents"])
            result = TicketResult(ticket_id, created=False, refs=json.loads(row["Refs"]))
            if incident.IncidentId in incidents:
                return result
            row["Incidents"] = json.dumps([*incidents, incident.IncidentId])
            row["Occurrences"] = len(incidents) + 1
            row["UpdatedAt"] = datetime.now(UTC)
            try:
                self._table.update_entity(
                    row, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
                break
            except ResourceModifiedError:
                continue
        for sink in self._sinks:
            ref = result.refs.get(sink.name)
            if ref:
                try:
                    sink.append(ref, content, note)
                except SinkError as error:
                    result.errors.append(str(error))
        return result

    def _update(self, pk: str, ticket_id: str, values: dict[str, Any]) -> None:
        self._table.update_entity({"PartitionKey": pk, "RowKey": ticket_id, **values})

    def resolve(self, incident: Incident, note: str) -> str:
        """Resolve the open ticket of ``incident``'s item and rule; returns its id (or ``""``)."""
        pk = ticket_partition(incident)
        try:
            pointer = self._table.get_entity(pk, OPEN_POINTER)
            self._table.delete_entity(
                pk,
                OPEN_POINTER,
                etag=pointer.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            row = self._table.get_entity(pk, pointer["TicketId"])
        except (ResourceNotFoundError, ResourceModifiedError):
            return ""
        self._update(pk, row["TicketId"], {"Status": RESOLVED, "UpdatedAt": datetime.now(UTC)})
        content = ticket_content(incident, note, self._language, row["TicketId"])
        for sink in self._sinks:
            ref = json.loads(row["Refs"]).get(sink.name)
            if ref:
                try:
                    sink.resolve(ref, content, note)
                except SinkError:
                    continue  # the table says resolved; the sink keeps its own state
        return row["TicketId"]

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket row (not the open pointers)."""
        return [dict(e) for e in self._table.list_entities() if e["RowKey"] != OPEN_POINTER]
