"""The ``stop_protection`` action: for a protected resource that is verifiably gone, stop its
backups and keep every recovery point. Never a DELETE of backup data.

Nothing in the event is trusted for this. Before the PUT, the Backup API must still show the
job failed, and ARM must say the resource is gone: a 404 for the VM with no VM of that name
elsewhere in the subscription (a move); for a SQL or SAP HANA database, the same of its host
VM (a dropped database cannot be seen through ARM: that stays a ticket); for a file share, a
404 for its storage account, or a share neither listed nor soft-deleted (a soft-deleted share
is an urgent ticket: it can be undeleted). Anything else, including an authorization
denial, becomes a ticket instead.

Multi-User Authorization: when the vault's Resource Guard protects "stop protection with retain
data" (read up front from the vault's Resource Guard mapping, :mod:`handlers.azure.guard`), or
the PUT is refused by a Resource Guard, the ticket says exactly what to request in the guard and
the PUT is never tried again for this incident (``blocked``).

With ``APPROVAL_REQUIRED``, a verified stop waits for a person (:mod:`handlers.actions.approval`);
an approval runs this action again, every check included.
"""

from __future__ import annotations

from datetime import UTC, datetime

from handlers.actions import approval as gate
from handlers.actions.context import ActionContext
from handlers.actions.registry import register
from handlers.azure.backup import STOPPED, Gone
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.azure.guard import (
    STOP_WITH_RETAIN_DATA,
    STOP_WITH_RETAIN_DATA_LABEL,
    ResourceGuard,
    is_resource_guard_refusal,
    stop_guard,
)
from handlers.core.ids import VaultRef
from handlers.core.incident import ApprovalState, Incident, IncidentStatus
from handlers.core.model import JOBLESS_SOURCES, Workload

NAME = "stop_protection"

DONE_NOTE = (
    "Protection of {what} was stopped because {why}. Every recovery point is retained: it can "
    "still be restored from vault {vault}. If it was moved or re-created, protect it again "
    "where it lives now; if the backup data is no longer needed, delete it from the vault "
    "yourself (it is billed until then)."
)


GUARD_NOTE = (
    "Multi-User Authorization: vault {vault} is protected by Resource Guard {guard}, which "
    "guards '{label}' (critical operation {operation}). Protection of {what} was NOT stopped, and "
    "the responder will not try again. To stop it, keeping every recovery point: ask the Resource "
    "Guard's owner for temporary access to that operation on {guard} (for example the Backup MUA "
    "Operator role, through PIM), then stop protection with retain data yourself, naming the "
    "guard's request {request}. Verified before this: {why}."
)
#: Steps after which this action never runs again for the incident.
FINAL_STATES = ("succeeded", "blocked")


def _done_note(incident: Incident, why: str) -> str:
    label = Workload.LABELS.get(incident.Workload, "item")
    what = f"{label} {incident.VmId or incident.resource_name}"
    return DONE_NOTE.format(what=what, why=why, vault=incident.VaultName)


def _guard_note(incident: Incident, guard: ResourceGuard | None, why: str) -> str:
    label = Workload.LABELS.get(incident.Workload, "item")
    return GUARD_NOTE.format(
        vault=incident.VaultId,
        guard=(guard.guard_id if guard else "") or "(see the vault's Multi-User Authorization)",
        label=STOP_WITH_RETAIN_DATA_LABEL,
        operation=STOP_WITH_RETAIN_DATA,
        what=f"{label} {incident.VmId or incident.resource_id}",
        request=(guard.request if guard else "") or "(the guard's default request)",
        why=why,
    )


def _blocked(ctx: ActionContext, guard: ResourceGuard | None, why: str) -> None:
    """A Resource Guard stands in the way: a ticket that says what to request, never a retry."""
    incident = ctx.incident()
    found = f"Resource Guard {guard.guard_id}" if guard else "a Resource Guard"
    ctx.log(NAME, "blocked", f"{why} ({found} protects '{STOP_WITH_RETAIN_DATA_LABEL}')")
    ctx.escalate(_guard_note(incident, guard, why))


def _guard(ctx: ActionContext) -> ResourceGuard | None:
    """The Resource Guard that protects the stop on the incident's vault, read up front; None
    when there is none or it cannot be read (the PUT's own answer then tells)."""
    try:
        return stop_guard(ctx.services.clients, VaultRef.parse(ctx.incident().VaultId))
    except AzureCallError as error:
        if error.kind == ErrorKind.UNAVAILABLE:
            raise
        ctx.log(NAME, "checked", f"the vault's Resource Guard could not be read ({error})")
        return None


def _refused_by_guard(ctx: ActionContext, error: AzureCallError) -> None:
    """The PUT was refused by a Resource Guard: name it if it can be read, and stop here."""
    try:
        guard = stop_guard(ctx.services.clients, VaultRef.parse(ctx.incident().VaultId))
    except AzureCallError:
        guard = None
    _blocked(ctx, guard, f"Azure refused the stop: {error}")


def _stop(ctx: ActionContext, why: str) -> str:
    """Past verification: stop now, or wait for a person; returns the state after it."""
    guard = _guard(ctx)
    if guard is not None:
        _blocked(ctx, guard, why)
        return ""
    incident = ctx.incident()
    if gate.waits(incident, ctx.settings.approval_required):
        gate.request(ctx, why, datetime.now(UTC))
        return ""
    ctx.log(NAME, "started", f"{why}; stopping, data retained")
    state = ctx.api.stop_protection()
    if state != STOPPED:
        raise AzureCallError(
            ErrorKind.UNAVAILABLE, "", f"protection state is {state!r} after the stop"
        )
    return state


def _approved_by(incident: Incident) -> str:
    approval = incident.approval
    if approval and approval.state == ApprovalState.APPROVED:
        return f"approved by {approval.by}, but "
    return ""


def _settled(incident: Incident) -> bool:
    """Nothing more to do: stopped, blocked by a Resource Guard, or a person said no."""
    if any(a.action == NAME and a.state in FINAL_STATES for a in incident.actions):
        return True
    approval = incident.approval
    return bool(approval and approval.state in (ApprovalState.REJECTED, ApprovalState.EXPIRED))


def _verified(ctx: ActionContext, incident: Incident) -> Gone | None:
    """ARM's verdict when the job still failed, the resource is gone and the vault has the
    item; None (logged, and a ticket when a person must look) otherwise."""
    from_job = not JOBLESS_SOURCES.intersection(incident.Source.split(","))
    if from_job and ctx.failure_unconfirmed(NAME):
        return None
    verdict = ctx.api.gone()
    if not verdict.gone:
        why = f"{_approved_by(incident)}{verdict.why}"
        ctx.log(NAME, "skipped", f"{why}; protection was left on")
        urgent = "Urgent: " if verdict.urgent else ""
        ctx.escalate(f"{urgent}Protection not stopped: {why}.")
        return None
    return verdict


def _failed(ctx: ActionContext, error: AzureCallError) -> None:
    """A call failed: a Resource Guard's refusal blocks for good; throttling, 5xx and timeouts
    raise (redelivery runs every check again first); anything else is a ticket."""
    if is_resource_guard_refusal(error):
        _refused_by_guard(ctx, error)
        return
    ctx.log(NAME, "failed", str(error))
    if error.kind == ErrorKind.UNAVAILABLE:
        raise error
    denied = (
        "denied by authorization or Multi-User Authorization"
        if error.kind == ErrorKind.DENIED
        else ""
    )
    ctx.escalate(f"Stopping protection failed: {denied or error}. Nothing was changed.")


def _stopped(ctx: ActionContext, why: str) -> None:
    note = _done_note(ctx.incident(), why)
    stopped = "protection stopped, recovery points retained"
    ctx.log(NAME, "succeeded", stopped, status=IncidentStatus.RESOLVED)
    result, state = ctx.ticket(note)
    if state:
        ctx.log("ticket", state, note, ref=result.ticket_id)
    ctx.notify("protection_stopped", note)


@register(NAME)
def stop_protection(ctx: ActionContext) -> None:
    """Verify, then stop protection with data retained, then tell the owner by ticket."""
    incident = ctx.incident()
    if _settled(incident):
        return
    try:
        verdict = _verified(ctx, incident)
        if verdict is None:
            return
        state = ctx.api.protection_state()
        if state is None:
            ctx.log(NAME, "skipped", "the vault has no such protected item")
            ctx.escalate("Protection not stopped: the vault has no matching protected item.")
            return
        if state != STOPPED and not _stop(ctx, verdict.why):
            return  # waits for a person, or blocked by a Resource Guard
    except AzureCallError as error:
        _failed(ctx, error)
        return
    _stopped(ctx, verdict.why)
