"""``respond()``: the one pipeline every event source converges on.

normalize (done at the edge) → scope → claim the job → classify → record → complete.
The job id is the idempotency key: the same failure arriving by alert, by redelivery and by
the watcher is handled once; later arrivals only count as occurrences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from handlers import telemetry
from handlers.events import Rejection, excerpt
from handlers.incident import RESOLVED, Incident, incident_keys, new_incident
from handlers.model import BackupFailure
from handlers.runtime import Runtime
from rules import Decision

NEW = "new"
RESUMED = "resumed"
DUPLICATE = "duplicate"
REJECTED = "rejected"
RECORD = "record"


@dataclass(frozen=True)
class Outcome:
    """What ``respond()`` did with one input, for logs, the CLI and tests."""

    kind: str
    job_id: str = ""
    vm_name: str = ""
    rule: str = ""
    category: str = ""
    action: str = ""
    status: str = ""
    reason: str = ""
    occurrences: int = 0

    def describe(self) -> str:
        """One line for a person."""
        if self.kind == REJECTED:
            return f"rejected    {self.reason}"
        what = f"{self.job_id} vm={self.vm_name or '?'} rule={self.rule} action={self.action}"
        if self.kind == DUPLICATE:
            return f"duplicate   {what} (seen {self.occurrences} times)"
        return f"{self.kind:<11} {what} status={self.status}"


def _reject(runtime: Runtime, rejection: Rejection) -> Outcome:
    runtime.store.record_rejection(rejection)
    telemetry.rejected(rejection.source)
    return Outcome(REJECTED, reason=rejection.reason)


def respond(item: BackupFailure | Rejection, runtime: Runtime) -> Outcome:
    """Handle one parsed input end to end, and log one line saying what was done.

    Storage errors propagate (the platform then redelivers the event); a bad input never
    raises: it is recorded as rejected with its reason.

    :raises handlers.store.DeliveryInFlightError: another delivery of the same job is running.
    """
    outcome = _respond(item, runtime)
    telemetry.handled(outcome)
    return outcome


def _respond(item: BackupFailure | Rejection, runtime: Runtime) -> Outcome:
    if isinstance(item, Rejection):
        return _reject(runtime, item)
    if not runtime.settings.in_scope(item.subscription_id):
        reason = f"subscription {item.subscription_id} is outside this deployment's scope"
        return _reject(
            runtime,
            Rejection(reason, str(item.source), excerpt(item.job_resource_id), item.event_id),
        )
    now = datetime.now(UTC)
    store = runtime.store
    claim = store.claim(
        item.job_id, incident_keys(item, now), now, runtime.settings.claim_lease_seconds
    )
    if claim.kind == DUPLICATE:
        incident = store.record_repeat(claim, str(item.source), now)
        return Outcome(
            DUPLICATE,
            item.job_id,
            item.vm_name,
            incident.Rule,
            incident.Category,
            incident.PlannedAction,
            incident.Status,
            occurrences=incident.Occurrences,
        )
    decision = runtime.rules.classify(item.codes, item.message, item.operation)
    keys = (claim.incident_pk, claim.incident_rk)
    incident = None
    if claim.kind == NEW or not store.has_incident(*keys):
        incident = _first_record(item, decision, keys, runtime.settings.dry_run, now)
        store.save_incident(incident)
        telemetry.incident_recorded(incident)
    acting = decision.action != RECORD and not runtime.settings.dry_run
    if acting:
        from handlers.actions import act

        act(runtime, *keys, decision.action)
    store.complete(claim)
    if incident is None or acting:  # the actions changed it: read what they made of it
        incident, _ = store.get_incident(*keys)
    return Outcome(
        claim.kind,
        item.job_id,
        item.vm_name,
        decision.rule,
        decision.category,
        decision.action,
        incident.Status,
    )


def _first_record(
    item: BackupFailure, decision: Decision, keys: tuple[str, str], dry_run: bool, now: datetime
) -> Incident:
    incident = new_incident(item, decision, keys, dry_run=dry_run, now=now)
    if decision.action == RECORD:  # informational (job-cancellation notices): nothing to do
        incident.Status = RESOLVED
        incident.log(RECORD, "done", "informational: nothing to do")
    else:
        incident.log(decision.action, "planned", "dry run: nothing is changed" if dry_run else "")
    return incident
