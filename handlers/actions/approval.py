"""The approval gate of ``stop_protection`` (``APPROVAL_REQUIRED``): a verified stop waits for a
person instead of running.

1. :func:`request`: once the stop is verified (job re-read, ARM says gone, not moved, no
   Resource Guard in the way), the incident records a pending :class:`Approval` (a random request
   id and a deadline ``APPROVAL_TIMEOUT_HOURS`` away) and the ``approvals`` table lists it; Teams,
   Slack and the webhook get Approve / Reject links and the ticket says the same. A link carries
   a signed token (:mod:`handlers.core.tokens`), never a function key.
2. :func:`decide`: a link (through the ``approvals`` HTTP function) or ``backup-responder approve
   ID`` / ``reject ID``. The first decision consumes the request under the incident's ETag; a
   replayed, reused, expired or foreign link changes nothing and is written in the incident's
   log (``approval refused``). An approval runs ``stop_protection`` again, which verifies
   everything afresh: a VM that came back is left alone, and the log says why.
3. :func:`sweep` (the ``expire_approvals`` timer): an unanswered request past its deadline
   becomes an escalated ticket; a decision that a crash left half done is finished.

Every step is a line of the incident's action log, with who decided and how.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from azure.core.exceptions import AzureError

from handlers.actions.context import ActionContext, Services
from handlers.azure.errors import AzureCallError
from handlers.core.incident import (
    Approval,
    ApprovalState,
    Incident,
    IncidentStatus,
    logged_detail,
)
from handlers.core.tokens import APPROVE, REJECT, Claims, sign
from handlers.storage import RetryLaterError

log = logging.getLogger("backup_responder.approvals")
NAME = "approval"
STOP = "stop_protection"
#: The route of the ``approvals`` HTTP function (``function_app.py``).
ROUTE = "api/approvals"
#: The timer looks at this many open approvals per run at most.
SWEEP_BATCH = 200


@dataclass(frozen=True)
class Decision:
    """What became of one decision: ``done`` when it was taken, and what to tell the person."""

    done: bool
    message: str


def waits(incident: Incident, required: bool) -> bool:
    """Whether a verified stop must wait for a person now (approval is required and not given)."""
    approval = incident.approval
    return required and not (approval and approval.state == ApprovalState.APPROVED)


def links(services: Services, incident: Incident) -> tuple[tuple[str, str], ...]:
    """The Approve and Reject links of the incident's pending request."""
    approval = incident.approval
    if approval is None:
        return ()
    settings = services.settings
    secret = settings.approval_secret.encode()
    expires = int(approval.deadline_time.timestamp())
    found = []
    for label, decision in (("Approve", APPROVE), ("Reject", REJECT)):
        token = sign(Claims(incident.IncidentId, decision, approval.request_id, expires), secret)
        found.append((label, f"{settings.approval_base_url}/{ROUTE}?token={token}"))
    return tuple(found)


def request(ctx: ActionContext, why: str, now: datetime) -> None:
    """Ask a person to approve the stop, once: a redelivery finds the request and only sends
    what a crash may have kept from going out."""
    incident = ctx.incident()
    deadline = (
        incident.approval.deadline_time
        if incident.approval
        else now + timedelta(hours=ctx.settings.approval_timeout_hours)
    )
    # The timer's list first: a crash after it leaves the request for the timer to close.
    ctx.services.storage.approvals.add(incident.IncidentId, ctx.pk, ctx.rk, deadline)
    if incident.approval is None:
        approval = Approval(
            secrets.token_urlsafe(18), deadline.isoformat(), requested_at=now.isoformat()
        )
        detail = f"{why}; waits for a person's approval until {deadline:%Y-%m-%d %H:%M} UTC"

        def ask(stored: Incident) -> None:
            stored.approval = approval

        incident = ctx.log(
            STOP, "awaiting_approval", detail, status=IncidentStatus.AWAITING_APPROVAL, also=ask
        )
    if not any(a.action == NAME and a.state == "requested" for a in incident.actions):
        _announce(ctx, incident, why)


def _announce(ctx: ActionContext, incident: Incident, why: str) -> None:
    offered = links(ctx.services, incident)
    approval = incident.approval
    assert approval is not None
    text = (
        f"Stop protection of {incident.resource_label} {incident.resource_id} in vault "
        f"{incident.VaultName} (recovery points are kept) waits for your approval: {why}. "
        f"Open a link to decide; they expire at {approval.deadline_time:%Y-%m-%d %H:%M} UTC, "
        f"then a ticket is escalated. Or: backup-responder approve {incident.IncidentId} "
        f"(or reject)."
    )
    ctx.notify("approval_requested", text, incident, offered)
    note = text + "".join(f"\n{label}: {url}" for label, url in offered)
    result, state = ctx.ticket(note)
    if state:
        ctx.log("ticket", state, note, ref=result.ticket_id)
    ctx.log(NAME, "requested", "Approve / Reject links sent", ref=approval.request_id)


def _refusal(approval: Approval | None, request_id: str | None, now: datetime) -> str:
    """Why a decision cannot be taken now ("" when it can)."""
    if approval is None:
        return "no approval was requested for this incident"
    if request_id is not None and request_id != approval.request_id:
        return "the link is of another approval request of this incident"
    if approval.state != ApprovalState.PENDING:
        when = approval.decided_at or approval.deadline
        who = f" by {approval.by}" if approval.by else ""
        return f"the request was {approval.state}{who} at {when} already (a link is single-use)"
    if now >= approval.deadline_time:
        return f"the approval window closed at {approval.deadline}"
    return ""


def decide(
    services: Services,
    pk: str,
    rk: str,
    decision: str,
    *,
    by: str,
    via: str,
    now: datetime,
    request_id: str | None = None,
) -> Decision:
    """Take a person's decision on the incident's pending approval, and carry it out.

    :param request_id: the request a link answers (``None`` from the CLI: the pending one).
    """
    ctx = ActionContext(services, pk, rk)
    refused: list[str] = []
    state = ApprovalState.APPROVED if decision == APPROVE else ApprovalState.REJECTED

    def take(stored: Incident) -> None:
        refused[:] = [_refusal(stored.approval, request_id, now)]  # afresh on each attempt
        if not refused[0] and stored.approval is not None:
            stored.approval = replace(
                stored.approval, state=state, by=by, via=via, decided_at=now.isoformat()
            )
            stored.log(NAME, state, f"by {by} via {via}", ref=stored.approval.request_id)

    incident = services.storage.incidents.mutate(pk, rk, take)
    if refused[0]:
        refusal(ctx, f"{decision} via {via}{f' by {by}' if by else ''}: {refused[0]}")
        return Decision(False, f"Nothing was changed: {refused[0]}.")
    # Should this run die before the decision is carried out, the timer finishes it.
    stranded = now + timedelta(seconds=services.settings.claim_lease_seconds)
    services.storage.approvals.add(incident.IncidentId, pk, rk, stranded)
    try:
        return Decision(True, carry_out(ctx))
    except (AzureCallError, RetryLaterError) as error:  # throttled, 5xx, a busy ticket
        ctx.log(NAME, "deferred", f"{state}, not carried out yet: {error}")
        return Decision(
            True,
            f"Your decision ({state}) is recorded; carrying it out failed for now and the "
            "expire_approvals timer tries again within minutes.",
        )


def refusal(ctx: ActionContext, reason: str) -> None:
    """Log a refused decision once: the same link tried again (a person clicking twice, a link
    scanner) is told again, but does not grow the incident's log."""
    said = (NAME, "refused", logged_detail(reason))
    if not any((a.action, a.state, a.detail) == said for a in ctx.incident().actions):
        ctx.log(NAME, "refused", reason)


def carry_out(ctx: ActionContext) -> str:
    """Do what the incident's decided approval says (idempotent: a redelivery, or the timer
    after a crash, repeats nothing that is done); then forget it. Returns what happened."""
    incident = ctx.incident()
    approval = incident.approval
    assert approval is not None and approval.state != ApprovalState.PENDING
    if ctx.settings.dry_run and not approval.done:  # DRY_RUN came on after the request
        incident = ctx.log(
            STOP,
            "planned",
            f"dry run: {approval.state}; nothing is changed",
            status=IncidentStatus.OPEN,
        )
    elif approval.state == ApprovalState.APPROVED:
        from handlers.actions import act  # the package imports this module first

        act(ctx.services, ctx.pk, ctx.rk, STOP)  # as respond() runs it (an item not found: ticket)
        incident = ctx.incident()
    elif not approval.done:
        why = (
            f"rejected by {approval.by}"
            if approval.state == ApprovalState.REJECTED
            else f"not answered within {ctx.settings.approval_timeout_hours} h"
        )
        incident = ctx.escalate(
            f"Stop protection of {incident.resource_id} was {why}: nothing was changed, "
            "protection is still on and its backups will keep failing until a person acts."
        )
    _done(ctx, incident)
    return _outcome(incident)


def _done(ctx: ActionContext, incident: Incident) -> None:
    def finish(stored: Incident) -> None:
        if stored.approval is not None:
            stored.approval = replace(stored.approval, done=True)

    ctx.services.storage.incidents.mutate(ctx.pk, ctx.rk, finish)
    ctx.services.storage.approvals.remove(incident.IncidentId)


def _outcome(incident: Incident) -> str:
    """What came of the decision, for the person who made it: the stop's last step after it,
    else the decision itself."""
    log = incident.actions
    decided = max(
        (i for i, a in enumerate(log) if a.action == NAME and a.state in ApprovalState.DECIDED),
        default=0,
    )
    stops = [a for a in log[decided:] if a.action == STOP]
    last = stops[-1] if stops else log[decided]
    return (
        f"{last.action} {last.state}: {last.detail} "
        f"(incident {incident.IncidentId}, status {incident.Status})"
    )


def expire(ctx: ActionContext, now: datetime) -> bool:
    """Close an unanswered request whose deadline passed; False when it is not due (or was
    answered meanwhile)."""
    expired = [False]
    hours = ctx.settings.approval_timeout_hours

    def close(stored: Incident) -> None:
        approval = stored.approval
        expired[0] = bool(
            approval and approval.state == ApprovalState.PENDING and now >= approval.deadline_time
        )
        if expired[0] and approval is not None:
            stored.approval = replace(
                approval, state=ApprovalState.EXPIRED, decided_at=now.isoformat()
            )
            stored.log(NAME, "expired", f"no answer within {hours} h", ref=approval.request_id)

    ctx.services.storage.incidents.mutate(ctx.pk, ctx.rk, close)
    return expired[0]


def sweep(services: Services, now: datetime, lease: timedelta) -> int:
    """The ``expire_approvals`` timer: escalate what nobody answered in time, finish what a
    crash left half done (a decision older than ``lease``: not one still being carried out),
    forget what is over. Returns how many approvals were closed or finished."""
    handled = 0
    for row in services.storage.approvals.open(SWEEP_BATCH, due_by=now):
        try:
            handled += _close(services, row, now, lease)
        except (AzureError, AzureCallError, RetryLaterError):  # Azure or storage, for now
            # One approval that cannot be finished must not keep the others waiting: its row
            # stays due, and the next run tries again.
            log.exception("approval of incident %s not finished yet", row["IncidentId"])
    return handled


def _close(services: Services, row: dict[str, str], now: datetime, lease: timedelta) -> int:
    """Close or finish one due approval (1), or set when it is due next (0)."""
    ctx = ActionContext(services, row["IncidentPk"], row["IncidentRk"])
    incident = services.storage.incidents.find(ctx.pk, ctx.rk)
    approval = incident.approval if incident else None
    if incident is None or approval is None or approval.done:
        services.storage.approvals.remove(row["IncidentId"])
        return 0
    if approval.state == ApprovalState.PENDING:
        next_look = None if expire(ctx, now) else approval.deadline_time
    else:  # decided: finish it, unless it may still be being carried out
        stranded = datetime.fromisoformat(approval.decided_at) + lease
        next_look = stranded if now < stranded else None
    if next_look is not None:
        services.storage.approvals.add(row["IncidentId"], ctx.pk, ctx.rk, next_look)
        return 0
    carry_out(ctx)
    return 1
