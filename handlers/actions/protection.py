"""The ``stop_protection`` action: for a VM that is verifiably gone, stop its backups and
keep every recovery point. Never a DELETE of backup data.

Nothing in the event is trusted for this. Before the PUT, the Backup API must still show
the job failed, ARM must answer 404 for the VM, and no VM of that name may exist elsewhere
in the subscription (a move). Anything else, including an authorization or Multi-User
Authorization denial, becomes a ticket instead.
"""

from __future__ import annotations

from handlers.actions.context import ActionContext
from handlers.actions.registry import register
from handlers.azure.backup import STOPPED
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.core.incident import IncidentStatus
from handlers.core.model import Source

NAME = "stop_protection"

DONE_NOTE = (
    "Protection of {vm} was stopped because the VM no longer exists (Azure Resource Manager "
    "returned 404). Every recovery point is retained: the VM can still be restored from vault "
    "{vault}. If the VM was moved or re-created, protect it again where it lives now; if the "
    "backup data is no longer needed, delete it from the vault yourself (it is billed until "
    "then)."
)


def _precheck(ctx: ActionContext) -> str:
    """Why protection must NOT be stopped, or ``""`` when every check passed."""
    if ctx.api.vm_exists():
        return "Azure Resource Manager still has the VM; protection was left on"
    moved_to = ctx.api.vm_elsewhere()
    if moved_to:
        return f"a VM with the same name exists at {moved_to} (moved?); protection was left on"
    return ""


@register(NAME)
def stop_protection(ctx: ActionContext) -> None:
    """Verify, then stop protection with data retained, then tell the owner by ticket."""
    incident = ctx.incident()
    if any(a.action == NAME and a.state == "succeeded" for a in incident.actions):
        return
    try:
        from_job = Source.VM_DELETED not in incident.Source.split(",")  # deletions have no job
        if from_job and ctx.failure_unconfirmed(NAME):
            return
        objection = _precheck(ctx)
        if objection:
            ctx.log(NAME, "skipped", objection)
            ctx.escalate(f"Protection not stopped: {objection}.")
            return
        item = ctx.api.protected_item()
        if item is None:
            ctx.log(NAME, "skipped", "the vault has no such protected item")
            ctx.escalate("Protection not stopped: the vault has no matching protected item.")
            return
        if item.protection_state != STOPPED:
            ctx.log(NAME, "started", "VM confirmed deleted (ARM 404); stopping, data retained")
            state = ctx.api.stop_protection(item.source_resource_id or ctx.api.item.vm_id)
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
    note = DONE_NOTE.format(vm=ctx.api.item.vm_id or incident.VmName, vault=incident.VaultName)
    stopped = "protection stopped, recovery points retained"
    ctx.log(NAME, "succeeded", stopped, status=IncidentStatus.RESOLVED)
    result, state = ctx.ticket(note)
    if state:
        ctx.log("ticket", state, "owner informed", ref=result.ticket_id)
    ctx.notify("protection_stopped", note)
