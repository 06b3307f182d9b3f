"""The ``await_healing`` action: a failure the service repairs by itself (a missing first full
backup of a scheduled backup, a broken log chain it mends with a full backup).

Recorded and resolved at once, like ``record``; but when the same item failed the same way
within the rule's ``hours`` before, the healing that should have run did not help, and a
person gets a ticket.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.actions.context import ActionContext
from handlers.actions.registry import register
from handlers.core.incident import IncidentStatus

NAME = "await_healing"
PARAMETERS = {"hours": {"type": "integer", "minimum": 1, "maximum": 168, "default": 24}}


@register(NAME, parameters=PARAMETERS)
def await_healing(ctx: ActionContext) -> None:
    """Record a failure the service heals itself; a ticket if it came back within ``hours``."""
    incident = ctx.incident()
    hours = ctx.params(NAME)["hours"]
    earlier = ctx.services.storage.incidents.of_same_item_and_rule(
        incident, incident.failed_at - timedelta(hours=hours)
    )
    if not earlier:
        waiting = f"the service repairs this itself; a ticket if it fails again within {hours} h"
        ctx.log(NAME, "succeeded", waiting, status=IncidentStatus.RESOLVED)
        return
    before = earlier[0]
    why = f"it failed the same way {len(earlier)} time(s) in {hours} h (job {before.JobId})"
    ctx.log(NAME, "failed", f"the service's repair did not help: {why}", ref=before.JobId)
    ctx.escalate(f"The service's own repair did not help: {why}.")
