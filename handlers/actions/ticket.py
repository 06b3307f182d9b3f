"""The ``ticket`` action: hand a failure to a person, with the remediation steps."""

from __future__ import annotations

from handlers.actions.context import ActionContext
from handlers.actions.registry import register


@register("ticket")
def open_ticket(ctx: ActionContext) -> None:
    """Open (or add to) the ticket for this item and rule, with the remediation steps."""
    incident = ctx.incident()
    ctx.escalate(f"Backup of {incident.VmName or 'a VM'} failed: {incident.RuleTitle}.")
