"""Actions: what the responder does about an incident, registered by name.

Each action is a function taking an :class:`ActionContext`, registered with
:func:`action`; the rule's ``action`` field names it. Every step an action takes is written
to the incident's action log (ETag-guarded), so a redelivery can tell what already happened
and never does it twice.

>>> sorted(ACTIONS)
['retry', 'stop_protection', 'ticket']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

from handlers import telemetry
from handlers.azure_ops import BackupApi
from handlers.incident import ESCALATED, REJECTED, RESOLVED, Incident
from handlers.runtime import Runtime

ActionFn = Callable[["ActionContext"], None]
ACTIONS: dict[str, ActionFn] = {}


def action(name: str) -> Callable[[ActionFn], ActionFn]:
    """Register the decorated function as the action called ``name``."""

    def register(fn: ActionFn) -> ActionFn:
        known = ACTIONS.get(name)
        if known is not None and known.__qualname__ != fn.__qualname__:
            raise ValueError(f"action {name!r} is already {known.__module__}.{known.__qualname__}")
        ACTIONS[name] = fn
        return fn

    return register


@dataclass
class ActionContext:
    """One incident being acted on, with the services actions use."""

    runtime: Runtime
    pk: str
    rk: str

    def incident(self) -> Incident:
        """The incident as stored now."""
        return self.runtime.store.get_incident(self.pk, self.rk)[0]

    @cached_property
    def api(self) -> BackupApi:
        return BackupApi(self.runtime.clients, self.incident().item)

    def log(
        self,
        action_name: str,
        state: str,
        detail: str = "",
        *,
        attempt: int = 0,
        ref: str = "",
        status: str = "",
    ) -> Incident:
        """Append to the action log and, optionally, move the incident to ``status``."""

        def change(incident: Incident) -> None:
            incident.log(action_name, state, detail, attempt=attempt, ref=ref)
            incident.LastSeen = datetime.now(UTC)
            if status:
                incident.Status = status

        incident = self.runtime.store.mutate_incident(self.pk, self.rk, change)
        telemetry.action_step(incident, action_name, state, detail)
        return incident

    def notify(self, outcome: str, text: str, incident: Incident | None = None) -> None:
        """Announce; a failed notification is logged on the incident, never raised.

        :param incident: the incident as just written, when the caller has it (saves a read).
        """
        if not self.runtime.notifier.enabled:
            return
        incident = incident or self.incident()
        for error in self.runtime.notifier.announce(outcome, incident, text):
            self.log("notify", "failed", error)

    def escalate(self, reason: str) -> Incident:
        """Hand the incident to a person: a ticket with the remediation, status escalated."""
        from handlers.tickets import TicketDesk

        desk: TicketDesk = self.runtime.tickets
        result = desk.open_or_append(self.incident(), reason)
        state = "opened" if result.created else "appended"
        for error in result.errors:
            self.log("ticket", "failed", error, ref=result.ticket_id)
        incident = self.log("ticket", state, reason, ref=result.ticket_id, status=ESCALATED)
        self.notify("ticket_opened", reason, incident)
        return incident

    def failure_unconfirmed(self, action_name: str, attempt: int = 0) -> bool:
        """Re-read the job: when the Backup API does not report it failed, reject the incident.

        The event is never trusted for an action; a job the API does not show as failed
        means the payload was stale or wrong, and nothing is done about it.
        """
        incident = self.incident()
        status = self.api.job(incident.JobId).status
        if status.lower() == "failed":
            return False
        reason = f"the Backup API reports job {incident.JobId} as {status}, not Failed"
        self.log(action_name, "skipped", reason, attempt=attempt, status=REJECTED)
        return True

    def resolve(self, action_name: str, reason: str, *, attempt: int = 0, ref: str = "") -> None:
        """The incident needs nothing more: resolve it and its open ticket, if any."""
        incident = self.log(
            action_name, "succeeded", reason, attempt=attempt, ref=ref, status=RESOLVED
        )
        ticket_id = self.runtime.tickets.resolve(incident, reason)
        if ticket_id:
            incident = self.log("ticket", "resolved", reason, ref=ticket_id)
        self.notify("resolved", reason, incident)


def act(runtime: Runtime, pk: str, rk: str, action_name: str) -> None:
    """Run the registered action ``action_name`` for the incident at ``pk``/``rk``."""
    ACTIONS[action_name](ActionContext(runtime, pk, rk))


# The actions register themselves on import; they need the names above, so they come last.
from handlers.actions import protection, retry, ticket  # noqa: E402, F401
