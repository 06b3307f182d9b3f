"""The ``ticket`` action: hand a failure to a person, with the remediation steps.

(``record`` rules need no action: ``respond()`` resolves their incidents as it records them.)
"""

from __future__ import annotations

from handlers.actions import ActionContext, action


@action("ticket")
def open_ticket(ctx: ActionContext) -> None:
    """Open (or add to) the ticket for this item and rule, with the remediation steps."""
    incident = ctx.incident()
    ctx.escalate(f"Backup of {incident.VmName or 'a VM'} failed: {incident.RuleTitle}.")
