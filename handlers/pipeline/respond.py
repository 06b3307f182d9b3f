"""``respond()``: the one pipeline every event source converges on.

normalize (done at the edge) → scope → claim the job → classify → record → act → complete.
The job id is the idempotency key: the same failure arriving by alert, by redelivery and by
the watcher is handled once; later arrivals only count as occurrences.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.actions import ACTIONS, act
from handlers.core.incident import Incident, new_incident
from handlers.core.model import BackupFailure, Rejection
from handlers.core.outcome import Outcome, OutcomeKind
from handlers.core.text import excerpt
from handlers.outbound import telemetry
from handlers.pipeline.runtime import Runtime
from handlers.storage import Claim, ClaimKind, RetryLaterError
from handlers.storage.keys import incident_keys


def respond(runtime: Runtime, item: BackupFailure | Rejection) -> Outcome:
    """Handle one parsed input end to end, and log one line saying what was done.

    Storage errors propagate (the platform then redelivers the event); a bad input never
    raises: it is recorded as rejected with its reason.

    :raises handlers.storage.RetryLaterError: another delivery of the same job is running, or
        its incident kept changing: deliver again later.
    """
    outcome = _respond(runtime, item)
    telemetry.handled(outcome)
    return outcome


def _reject(runtime: Runtime, rejection: Rejection) -> Outcome:
    runtime.storage.rejections.record(rejection)
    telemetry.rejected(rejection.source)
    return Outcome(kind=OutcomeKind.REJECTED, reason=rejection.reason)


def _respond(runtime: Runtime, item: BackupFailure | Rejection) -> Outcome:
    if isinstance(item, Rejection):
        return _reject(runtime, item)
    if not runtime.settings.in_scope(item.subscription_id):
        reason = f"subscription {item.subscription_id} is outside this deployment's scope"
        return _reject(
            runtime,
            Rejection(reason, str(item.source), excerpt(item.job_resource_id), item.event_id),
        )
    now = runtime.clock()
    storage = runtime.storage
    lease = timedelta(seconds=runtime.settings.claim_lease_seconds)
    claim = storage.claims.claim(item.job_id, incident_keys(item, now), now, lease)
    if claim.kind == ClaimKind.DUPLICATE:
        return _repeat(runtime, item, claim, now)
    decision = runtime.rules.classify(item.codes, item.message, item.operation, item.workload)
    spec = ACTIONS[decision.action]
    incident = None
    if claim.kind == ClaimKind.NEW or not storage.incidents.exists(*claim.incident_keys):
        incident = new_incident(
            item, decision, claim.incident_keys, dry_run=runtime.settings.dry_run, now=now
        )
        spec.on_record(incident, runtime.settings.dry_run)
        if not storage.incidents.insert(incident):
            # An incident is stored at these keys already (its claim expired and was removed):
            # the job was handled; this delivery only counts.
            storage.claims.complete(claim)
            return _repeat(runtime, item, claim, now)
        telemetry.incident_recorded(incident)
    acting = spec.acts and not runtime.settings.dry_run
    if acting:
        try:
            act(runtime, *claim.incident_keys, decision.action)
        except RetryLaterError:
            storage.claims.release(claim, runtime.clock())  # the redelivery may resume at once
            raise
    storage.claims.complete(claim)
    if incident is None or acting:  # the actions changed it: read what they made of it
        incident = storage.incidents.get(*claim.incident_keys)
    return Outcome.about(incident, claim.kind)


def _repeat(runtime: Runtime, item: BackupFailure, claim: Claim, now: datetime) -> Outcome:
    """Count one more delivery of an already handled job on its incident."""
    source = str(item.source)

    def count(incident: Incident) -> None:
        incident.Occurrences += 1
        incident.LastSeen = now
        incident.Source = ",".join(sorted(set(incident.Source.split(",")) | {source}))

    incident = runtime.storage.incidents.mutate(*claim.incident_keys, count)
    return Outcome.about(incident, OutcomeKind.DUPLICATE, occurrences=incident.Occurrences)
