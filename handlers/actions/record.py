"""The ``record`` action: informational failures (job-cancellation notices) that need nothing.

It completes as the incident is first written (resolved, one log line), so it costs no
round trip and no call, in dry run too.
"""

from __future__ import annotations

from handlers.actions.context import ActionContext
from handlers.actions.registry import register
from handlers.core.incident import Incident, IncidentStatus

NAME = "record"


def _resolve_on_record(incident: Incident, dry_run: bool) -> None:
    incident.Status = IncidentStatus.RESOLVED
    incident.log(NAME, "done", "informational: nothing to do")


@register(NAME, acts=False, on_record=_resolve_on_record)
def record(ctx: ActionContext) -> None:
    """Record the failure and resolve it: nothing to do."""
