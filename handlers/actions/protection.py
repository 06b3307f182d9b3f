"""The ``stop_protection`` action: for a protected resource that is verifiably gone, stop its
backups and keep every recovery point. Never a DELETE of backup data.

Nothing in the event is trusted for this. Before the PUT, the Backup API must still show the
job failed, and ARM must say the resource is gone: a 404 for the VM with no VM of that name
elsewhere in the subscription (a move); for a SQL or SAP HANA database, the same of its host
VM (a dropped database cannot be seen through ARM: that stays a ticket); for a file share, a
404 for its storage account, or a share neither listed nor soft-deleted (a soft-deleted share
is an urgent ticket: it can be undeleted). Anything else, including an authorization or
Multi-User Authorization denial, becomes a ticket instead.
"""

from __future__ import annotations

from handlers.actions.context import ActionContext
from handlers.actions.registry import register
from handlers.azure.backup import STOPPED
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.core.incident import Incident, IncidentStatus
from handlers.core.model import JOBLESS_SOURCES, Workload

NAME = "stop_protection"

DONE_NOTE = (
    "Protection of {what} was stopped because {why}. Every recovery point is retained: it can "
    "still be restored from vault {vault}. If it was moved or re-created, protect it again "
    "where it lives now; if the backup data is no longer needed, delete it from the vault "
    "yourself (it is billed until then)."
)


def _done_note(incident: Incident, why: str) -> str:
    label = Workload.LABELS.get(incident.Workload, "item")
    what = f"{label} {incident.VmId or incident.resource_name}"
    return DONE_NOTE.format(what=what, why=why, vault=incident.VaultName)


@register(NAME)
def stop_protection(ctx: ActionContext) -> None:
    """Verify, then stop protection with data retained, then tell the owner by ticket."""
    incident = ctx.incident()
    if any(a.action == NAME and a.state == "succeeded" for a in incident.actions):
        return
    try:
        from_job = not JOBLESS_SOURCES.intersection(incident.Source.split(","))
        if from_job and ctx.failure_unconfirmed(NAME):
            return
        verdict = ctx.api.gone()
        if not verdict.gone:
            ctx.log(NAME, "skipped", f"{verdict.why}; protection was left on")
            urgent = "Urgent: " if verdict.urgent else ""
            ctx.escalate(f"{urgent}Protection not stopped: {verdict.why}.")
            return
        state = ctx.api.protection_state()
        if state is None:
            ctx.log(NAME, "skipped", "the vault has no such protected item")
            ctx.escalate("Protection not stopped: the vault has no matching protected item.")
            return
        if state != STOPPED:
            ctx.log(NAME, "started", f"{verdict.why}; stopping, data retained")
            state = ctx.api.stop_protection()
            if state != STOPPED:
                raise AzureCallError(
                    ErrorKind.UNAVAILABLE, "", f"protection state is {state!r} after the stop"
                )
    except AzureCallError as error:
        ctx.log(NAME, "failed", str(error))
        if error.kind == ErrorKind.UNAVAILABLE:
            raise  # redelivery retries; the checks above run again first
        denied = (
            "denied by authorization or Multi-User Authorization"
            if error.kind == ErrorKind.DENIED
            else ""
        )
        ctx.escalate(f"Stopping protection failed: {denied or error}. Nothing was changed.")
        return
    note = _done_note(ctx.incident(), verdict.why)
    stopped = "protection stopped, recovery points retained"
    ctx.log(NAME, "succeeded", stopped, status=IncidentStatus.RESOLVED)
    result, state = ctx.ticket(note)
    if state:
        ctx.log("ticket", state, "owner informed", ref=result.ticket_id)
    ctx.notify("protection_stopped", note)
