"""The ticket desk: one open ticket per protected item and rule, in the ``tickets`` table
(:class:`~handlers.storage.tickets.TicketStore`) and every configured sink. A repeat failure
appends an occurrence to the open ticket; one that comes back within ``TICKET_REOPEN_DAYS``
after the item and rule's ticket was resolved reopens that ticket instead of opening another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from handlers.core.incident import Incident
from handlers.core.tokens import without_tokens
from handlers.outbound.http import SinkError
from handlers.outbound.sinks import TicketContent, TicketSink
from handlers.storage import RetryLaterError
from handlers.storage.keys import safe_key
from handlers.storage.tickets import TicketStatus, TicketStore, resolved_at

MAX_BODY = 16_000
#: How long a sink's opening is presumed in flight; an older one was left by a crash.
OPENING_LEASE = timedelta(seconds=60)
#: A concurrent append waits this long at most for another worker's sink ref.
OPENING_POLLS, OPENING_POLL_SECONDS = 10, 0.5
MAX_ERRORS = 20


class TicketBusyError(RetryLaterError):
    """Another worker is still opening the ticket in a sink; deliver again later."""


def _claim(incident: Incident, now: datetime) -> dict[str, str]:
    return {"by": incident.IncidentId, "at": now.isoformat()}


def _opening_taker(
    sink: str, incident: Incident, taken: list[bool]
) -> Callable[[dict[str, Any]], bool]:
    """A row change that makes ``incident`` the one opening ``sink`` (appending to ``taken``),
    unless the sink has its ref or a live opening by another worker (then nothing is written)."""

    def take(row: dict[str, Any]) -> bool:
        taken.clear()  # decided afresh on each attempt: a write that lost a race is tried again
        refs, opening = json.loads(row["Refs"]), json.loads(row.get("Opening") or "{}")
        holder = opening.get(sink)
        if refs.get(sink) or (holder and not _abandoned(holder, incident)):
            return False
        opening[sink] = _claim(incident, datetime.now(UTC))
        row["Opening"] = json.dumps(opening)
        taken.append(True)
        return True

    return take


def _abandoned(holder: dict[str, str], incident: Incident) -> bool:
    """An opening this worker may take over: its own (a crashed earlier delivery) or stale."""
    started = datetime.fromisoformat(holder["at"])
    return holder["by"] == incident.IncidentId or datetime.now(UTC) - started > OPENING_LEASE


def _reopening(incident: Incident) -> Callable[[dict[str, Any]], bool]:
    """A row change that reopens a resolved ticket for ``incident`` (nothing for an open one)."""

    def reopen(row: dict[str, Any]) -> bool:
        if row["Status"] != TicketStatus.RESOLVED:
            return False
        now = datetime.now(UTC)
        row.update(Status=TicketStatus.OPEN, ReopenedBy=incident.IncidentId, ReopenedAt=now)
        row.update(Reopens=int(row.get("Reopens") or 0) + 1, UpdatedAt=now)
        return True

    return reopen


def _reopening_taker(
    sink: str, number: int, incident: Incident, taken: list[bool]
) -> Callable[[dict[str, Any]], bool]:
    """A row change that makes ``incident`` the one telling ``sink`` of reopening ``number``
    (appending to ``taken``), unless the sink was told already or another worker is telling it
    now (then nothing is written)."""

    def take(row: dict[str, Any]) -> bool:
        taken.clear()  # decided afresh on each attempt
        done = json.loads(row.get("ReopenedIn") or "{}")
        telling = json.loads(row.get("Reopening") or "{}")
        holder = telling.get(sink)
        if done.get(sink, 0) >= number or (holder and not _abandoned(holder, incident)):
            return False
        row["Reopening"] = json.dumps({**telling, sink: _claim(incident, datetime.now(UTC))})
        taken.append(True)
        return True

    return take


def _reopened_in(sink: str, number: int) -> Callable[[dict[str, Any]], bool]:
    """A row change noting that ``sink`` was told of reopening ``number`` (or that telling it
    failed: ``number`` 0 only lets the next delivery try again)."""

    def note(row: dict[str, Any]) -> bool:
        done = json.loads(row.get("ReopenedIn") or "{}")
        telling = json.loads(row.get("Reopening") or "{}")
        telling.pop(sink, None)
        if number:
            done[sink] = max(done.get(sink, 0), number)
        row.update(ReopenedIn=json.dumps(done), Reopening=json.dumps(telling))
        return True

    return note


@dataclass
class TicketResult:
    """What happened to the ticket for one incident."""

    ticket_id: str
    created: bool
    refs: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: This incident's failure reopened the (resolved) ticket.
    reopened: bool = False


def ticket_partition(incident: Incident) -> str:
    return safe_key(f"{incident.item_key}|{incident.Rule}")


def _facts(incident: Incident) -> dict[str, str]:
    facts = {incident.resource_label: incident.resource_id}
    if incident.StorageAccount:
        facts["Storage account"] = incident.StorageAccount
    return {
        **facts,
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
        title=(
            f"Azure Backup ({incident.resource_label}): {incident.RuleTitle} "
            f"on {incident.resource_name or '?'}"
        ),
        summary=summary,
        facts=_facts(incident),
        remediation=remediation,
        doc=incident.Doc,
        language=language,
        labels=("backup-responder", incident.Category, incident.Rule),
    )


class TicketDesk:
    """Opens, appends to and resolves tickets in the table and every configured sink.

    Every sink's ticket is opened in one step of its own: the row says a sink is being opened
    (``Opening``: by which incident, since when) before the call, and its ref is stored right
    after. A concurrent append that finds a sink still opening waits for its ref; an opening
    left behind by a crash (older than :data:`OPENING_LEASE`, or this incident's own) is taken
    over, looking the ticket up in the sink by our ticket id before opening one. A sink
    without a ref is never skipped silently: it is opened again, or its error is returned.
    """

    def __init__(
        self,
        store: TicketStore,
        sinks: list[TicketSink],
        language: str,
        reopen_within: timedelta = timedelta(0),
    ) -> None:
        self._store = store
        self._sinks = sinks
        self._language = language
        self._reopen_within = reopen_within

    def open_or_append(
        self,
        incident: Incident,
        summary: str,
        sent: frozenset[str] = frozenset(),
        on_sent: Callable[[str, str], None] | None = None,
    ) -> TicketResult:
        """Open a ticket for ``incident``, or add it as an occurrence of the open one.

        :param sent: sinks that already got this incident (its action log says so): a
            redelivery sends nothing to them again.
        :param on_sent: called with the sink and its ref right after each sink took it.
        :raises handlers.storage.RetryLaterError: the ticket kept changing, or another worker
            is still opening it in a sink; nothing of this occurrence was lost (deliver again).
        """
        pk = ticket_partition(incident)
        ticket_id = self._store.open_ticket_id(pk, self._reopenable(pk) or incident.IncidentId)
        content = ticket_content(incident, summary, self._language, ticket_id)
        fresh = self._store.create(self._new_row(pk, incident, content))
        result = TicketResult(ticket_id, created=ticket_id == incident.IncidentId)
        report = on_sent or (lambda _sink, _ref: None)
        opened = self._open_everywhere(pk, incident, content, result, report, look_up=not fresh)
        if not result.created:
            opened |= self._reopen(pk, incident, content, result, report=report, opened=opened)
        if result.created or not self._add_occurrence(pk, ticket_id, incident):
            return result
        code = incident.ErrorCodes or "no code"
        note = f"Occurred again: backup job {incident.JobId} failed ({code}). {summary}"
        for sink in self._sinks:
            ref = result.refs.get(sink.name)
            if ref and sink.name not in sent | opened:
                try:
                    sink.append(ref, content, note)
                    report(sink.name, ref)
                except SinkError as error:
                    result.errors.append(str(error))
        return result

    def _reopenable(self, pk: str) -> str:
        """The ticket of ``pk`` resolved within the reopen window, if any (``""``): the one a
        failure that comes back makes the open ticket again."""
        if self._reopen_within <= timedelta(0):
            return ""
        row = self._store.last_resolved(pk)
        if row is None or datetime.now(UTC) - resolved_at(row) > self._reopen_within:
            return ""
        return str(row["TicketId"])

    def _reopen(
        self,
        pk: str,
        incident: Incident,
        content: TicketContent,
        result: TicketResult,
        *,
        report: Callable[[str, str], None],
        opened: set[str],
    ) -> set[str]:
        """Reopen the ticket when it is resolved (the open pointer names it again: see
        :meth:`_reopenable`), and make sure every sink is told of its latest reopening; returns
        the sinks told now (they need no separate occurrence note).

        The row counts its reopenings (``Reopens``), and per sink the last one the sink was
        told (``ReopenedIn``) and who is telling it (``Reopening``, a claim like an opening's),
        so concurrent deliveries tell each sink once, and one interrupted by a crash is
        finished by the next delivery for this item and rule, whichever incident it is.
        """
        row = self._store.get(pk, content.ticket_id)
        if row["Status"] == TicketStatus.RESOLVED:
            if self._store.open_pointer(pk) != content.ticket_id:
                return set()  # resolved after this delivery found it open: nothing to reopen
            row = self._store.update(pk, content.ticket_id, _reopening(incident))
        number = int(row.get("Reopens") or 0)
        if not number:
            return set()
        result.reopened = row.get("ReopenedBy") == incident.IncidentId
        code = incident.ErrorCodes or "no code"
        note = (
            f"Reopened: backup job {incident.JobId} failed again ({code}) after the ticket was "
            f"resolved. {content.summary}"
        )
        told = set()
        for sink in self._sinks:
            if not result.refs.get(sink.name) or not self._take_reopening(
                pk, content.ticket_id, sink.name, number, incident
            ):
                continue  # no ticket there yet, told already, or another worker is telling it
            told_now = sink.name in opened or self._tell_reopened(
                pk, sink, content, note, number=number, result=result
            )
            self._store.update(
                pk, content.ticket_id, _reopened_in(sink.name, number if told_now else 0)
            )
            if told_now:
                report(sink.name, result.refs[sink.name])
                told.add(sink.name)
        return told

    def _take_reopening(
        self, pk: str, ticket_id: str, sink: str, number: int, incident: Incident
    ) -> bool:
        taken: list[bool] = []
        self._store.update(pk, ticket_id, _reopening_taker(sink, number, incident, taken))
        return bool(taken)

    def _tell_reopened(
        self,
        pk: str,
        sink: TicketSink,
        content: TicketContent,
        note: str,
        *,
        number: int,
        result: TicketResult,
    ) -> bool:
        """Reopen the sink's ticket; when the sink refuses (a person closed it there for good),
        open a new one in that sink instead, which the ticket follows from then on. False
        when neither worked (the error is returned; the next delivery tries again)."""
        ref = result.refs[sink.name]
        try:
            sink.reopen(ref, content, note, number)
            return True
        except SinkError as error:
            refused = error
        if not refused.refused:
            result.errors.append(str(refused))
            self._store_ref(pk, content.ticket_id, sink.name, "", str(refused))  # health
            return False
        why = f"{sink.name} refused to reopen {ref} ({refused}); this is its follow-up."
        anew = replace(content, ticket_id=f"{content.ticket_id}-{number}", summary=f"{note}\n{why}")
        try:
            new_ref = sink.find(anew) or sink.open(anew)
        except SinkError as error:
            result.errors.append(str(error))
            self._store_ref(pk, content.ticket_id, sink.name, "", str(error))
            return False
        self._store_ref(pk, content.ticket_id, sink.name, new_ref, "")
        result.refs[sink.name] = new_ref
        return True

    def _new_row(self, pk: str, incident: Incident, content: TicketContent) -> dict[str, Any]:
        now = datetime.now(UTC)
        opening = {sink.name: _claim(incident, now) for sink in self._sinks}
        return {
            "PartitionKey": pk,
            "RowKey": content.ticket_id,
            "TicketId": content.ticket_id,
            "Status": TicketStatus.OPEN,
            "Title": content.title,
            "Rule": incident.Rule,
            "VmName": incident.VmName,
            "VaultName": incident.VaultName,
            "SubscriptionId": incident.SubscriptionId,
            "Incidents": json.dumps([incident.IncidentId]),
            "Occurrences": 1,
            "Body": without_tokens(content.plain_text())[:MAX_BODY],  # links are for people
            "Language": self._language,
            "Refs": "{}",
            "Opening": json.dumps(opening),
            "SinkErrors": "[]",
            "CreatedAt": now,
            "UpdatedAt": now,
        }

    def _open_everywhere(
        self,
        pk: str,
        incident: Incident,
        content: TicketContent,
        result: TicketResult,
        report: Callable[[str, str], None],
        *,
        look_up: bool,
    ) -> set[str]:
        """Make sure every sink has the ticket; returns the sinks opened (or found) now.

        :param look_up: ask each sink for the ticket before opening one (False only for the
            worker that has just created the row: nobody can have opened it yet).
        """
        opened = set()
        for sink in self._sinks:
            ref = self._ref(pk, content.ticket_id, sink.name, incident)
            if ref is None:  # ours to open
                try:
                    ref = (look_up and sink.find(content)) or sink.open(content)
                except SinkError as error:
                    result.errors.append(str(error))
                    self._store_ref(pk, content.ticket_id, sink.name, "", str(error))
                    continue
                self._store_ref(pk, content.ticket_id, sink.name, ref, "")
                report(sink.name, ref)
                opened.add(sink.name)
            result.refs[sink.name] = ref
        return opened

    def _ref(self, pk: str, ticket_id: str, sink: str, incident: Incident) -> str | None:
        """The sink's ref; None when this worker must open it (it now holds the opening).

        :raises TicketBusyError: another worker is opening it and has not finished in time.
        """
        for _ in range(OPENING_POLLS):
            taken: list[bool] = []
            row = self._store.update(pk, ticket_id, _opening_taker(sink, incident, taken))
            ref = json.loads(row["Refs"]).get(sink)
            if ref:
                return str(ref)
            if taken:
                return None
            time.sleep(OPENING_POLL_SECONDS)
        raise TicketBusyError(f"ticket {ticket_id} is still being opened in {sink}; retry later")

    def _store_ref(self, pk: str, ticket_id: str, sink: str, ref: str, error: str) -> None:
        def record(row: dict[str, Any]) -> None:
            refs, opening = json.loads(row["Refs"]), json.loads(row.get("Opening") or "{}")
            errors = json.loads(row.get("SinkErrors") or "[]")
            opening.pop(sink, None)
            if ref:
                refs[sink] = ref
            if error:
                errors = [*errors, error][-MAX_ERRORS:]
            row.update(Refs=json.dumps(refs), Opening=json.dumps(opening))
            row.update(SinkErrors=json.dumps(errors), UpdatedAt=datetime.now(UTC))

        self._store.update(pk, ticket_id, record)

    def _add_occurrence(self, pk: str, ticket_id: str, incident: Incident) -> bool:
        """Count ``incident`` on the ticket; False when it was counted before."""
        added = [False]

        def add(row: dict[str, Any]) -> bool:
            incidents = json.loads(row["Incidents"])
            added[0] = incident.IncidentId not in incidents  # afresh on each attempt
            if not added[0]:
                return False
            row["Incidents"] = json.dumps([*incidents, incident.IncidentId])
            row["Occurrences"] = len(incidents) + 1
            row["UpdatedAt"] = datetime.now(UTC)
            return True

        self._store.update(pk, ticket_id, add)
        return added[0]

    def note(self, incident: Incident, ticket_id: str, note: str) -> TicketResult:
        """Add ``note`` to ticket ``ticket_id`` (the one ``incident`` opened or joined) in every
        sink that holds it; a sink that fails is returned as an error, never raised."""
        pk = ticket_partition(incident)
        result = TicketResult(ticket_id, created=False)
        try:
            row = self._store.get(pk, ticket_id)
        except ResourceNotFoundError:
            result.errors.append(f"ticket {ticket_id} not found")
            return result
        content = ticket_content(incident, note, self._language, ticket_id)
        for sink in self._sinks:
            ref = json.loads(row["Refs"]).get(sink.name)
            if not ref:
                continue
            try:
                sink.append(ref, content, note)
                result.refs[sink.name] = ref
            except SinkError as error:
                result.errors.append(str(error))
        return result

    def resolve(self, incident: Incident, note: str) -> str:
        """Resolve the open ticket of ``incident``'s item and rule; returns its id (or ``""``)."""
        pk = ticket_partition(incident)
        ticket_id = self._store.close_pointer(pk)
        if not ticket_id:
            return ""
        now = datetime.now(UTC)
        try:
            row = self._store.update(
                pk,
                ticket_id,
                lambda r: r.update(Status=TicketStatus.RESOLVED, UpdatedAt=now, ResolvedAt=now),
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
