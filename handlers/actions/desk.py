"""The ticket desk: one open ticket per protected item and rule, in the ``tickets`` table
(:class:`~handlers.storage.tickets.TicketStore`) and every configured sink. A repeat failure
appends an occurrence to the open ticket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from handlers.core.incident import Incident
from handlers.outbound.http import SinkError
from handlers.outbound.sinks import TicketContent, TicketSink
from handlers.storage.keys import safe_key
from handlers.storage.tickets import TicketStatus, TicketStore

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

    def __init__(self, store: TicketStore, sinks: list[TicketSink], language: str) -> None:
        self._store = store
        self._sinks = sinks
        self._language = language

    def open_or_append(self, incident: Incident, summary: str) -> TicketResult:
        """Open a ticket for ``incident``, or add it as an occurrence of the open one.

        Idempotent per incident: a redelivery never opens or appends twice.

        :raises handlers.storage.errors.ContentionError: the ticket kept changing under
            concurrent appends; nothing of this occurrence was written (retry the delivery).
        """
        pk = ticket_partition(incident)
        ticket_id = self._store.open_ticket_id(pk, incident.IncidentId)
        content = ticket_content(incident, summary, self._language, ticket_id)
        now = datetime.now(UTC)
        created = self._store.create(
            {
                "PartitionKey": pk,
                "RowKey": ticket_id,
                "TicketId": ticket_id,
                "Status": TicketStatus.OPEN,
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
        )
        if not created:
            return self._append(pk, ticket_id, incident, content)
        result = TicketResult(ticket_id, created=True)
        for sink in self._sinks:
            try:
                result.refs[sink.name] = sink.open(content)
            except SinkError as error:
                result.errors.append(str(error))
        refs, errors = json.dumps(result.refs), json.dumps(result.errors)
        self._store.update(pk, ticket_id, lambda row: row.update(Refs=refs, SinkErrors=errors))
        return result

    def _append(
        self, pk: str, ticket_id: str, incident: Incident, content: TicketContent
    ) -> TicketResult:
        code = incident.ErrorCodes or "no code"
        note = f"Occurred again: backup job {incident.JobId} failed ({code})."
        seen = [False]

        def add_occurrence(row: dict[str, Any]) -> bool:
            incidents = json.loads(row["Incidents"])
            if incident.IncidentId in incidents:
                seen[0] = True
                return False
            row["Incidents"] = json.dumps([*incidents, incident.IncidentId])
            row["Occurrences"] = len(incidents) + 1
            row["UpdatedAt"] = datetime.now(UTC)
            return True

        row = self._store.update(pk, ticket_id, add_occurrence)
        result = TicketResult(ticket_id, created=False, refs=json.loads(row["Refs"]))
        if seen[0]:
            return result
        for sink in self._sinks:
            ref = result.refs.get(sink.name)
            if ref:
                try:
                    sink.append(ref, content, note)
                except SinkError as error:
                    result.errors.append(str(error))
        return result

    def resolve(self, incident: Incident, note: str) -> str:
        """Resolve the open ticket of ``incident``'s item and rule; returns its id (or ``""``)."""
        pk = ticket_partition(incident)
        ticket_id = self._store.close_pointer(pk)
        if not ticket_id:
            return ""
        try:
            row = self._store.update(
                pk,
                ticket_id,
                lambda r: r.update(Status=TicketStatus.RESOLVED, UpdatedAt=datetime.now(UTC)),
            )
        except ResourceNotFoundError:
            return ""
        content = ticket_content(incident, note, self._language, ticket_id)
        for sink in self._sinks:
            ref = json.loads(row["Refs"]).get(sink.name)
            if ref:
                try:
                    sink.resolve(ref, content, note)
                except SinkError:
                    continue  # the table says resolved; the sink keeps its own state
        return ticket_id

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket row (not the open pointers)."""
        return self._store.rows()
