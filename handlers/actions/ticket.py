"""The ``ticket`` and ``record`` actions: hand a failure to a person, or just keep it."""

from __future__ import annotations

from handlers.actions import ActionContext, action
from handlers.incident import RESOLVED


@action("ticket")
def open_ticket(ctx: ActionContext) -> None:
    """Open (or add to) the ticket for this item and rule, with the remediation steps."""
    incident = ctx.incident()
    ctx.escalate(f"Backup of {incident.VmName or 'a VM'} failed: {incident.RuleTitle}.")


@action("record")
def record(ctx: ActionContext) -> None:
    """Informational failures (job-cancellation notices): recorded, nothing to do."""
    ctx.log("record", "done", "informational: nothing to do", status=RESOLVED)
