"""The spine end to end on Azurite: classify, record once, count repeats, reject bad input."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from handlers.core.incident import IncidentStatus
from handlers.core.outcome import OutcomeKind
from handlers.intake.events import parse
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from handlers.storage import DeliveryInFlightError
from tests.conftest import load_event
from tests.world import deliver_concurrently


def _respond(runtime: Runtime, name: str):
    return respond(runtime, parse(load_event(name)))


def test_first_delivery_records_a_classified_incident(runtime: Runtime) -> None:
    outcome = _respond(runtime, "eventgrid-storage-timeout")
    assert (outcome.kind, outcome.action, outcome.status) == (
        OutcomeKind.NEW,
        "retry",
        IncidentStatus.OPEN,
    )
    incident = runtime.storage.find_incident("c1a2b3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b")
    assert incident is not None
    assert incident.Rule == outcome.rule
    assert incident.Category == "transient"
    assert incident.PlannedAction == "retry"
    assert incident.DryRun is True
    assert incident.VmName == "vm-web-01"
    assert incident.VaultName == "rsv-prod-japaneast"
    assert incident.ErrorCodes == "400234"
    assert incident.Remediation and incident.RemediationJa and incident.Doc.startswith("https://")
    assert incident.Occurrences == 1
    assert [(a.action, a.state) for a in incident.actions] == [("retry", "planned")]


def test_redelivery_a_day_later_is_one_incident(runtime: Runtime) -> None:
    first = _respond(runtime, "cloudevent-vm-not-found")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    later = dataclasses.replace(runtime, clock=lambda: tomorrow)
    second = _respond(later, "cloudevent-vm-not-found")
    assert (first.kind, second.kind) == (OutcomeKind.NEW, OutcomeKind.DUPLICATE)
    assert second.occurrences == 2
    (incident,) = runtime.storage.incidents.query()
    assert incident.LastSeen == tomorrow
    assert incident.LastSeen - incident.FirstSeen > timedelta(hours=23)
    incidents = list(runtime.storage.incidents.query())
    assert len(incidents) == 1
    assert incidents[0].Occurrences == 2
    assert incidents[0].PlannedAction == "stop_protection"


def test_same_job_from_two_sources_is_one_incident(runtime: Runtime) -> None:
    cloud = load_event("cloudevent-vm-not-found")
    respond(runtime, parse(cloud))
    outcome = respond(runtime, parse(cloud["data"]))  # the bare job, e.g. from the watcher
    assert outcome.kind == OutcomeKind.DUPLICATE
    (incident,) = runtime.storage.incidents.query()
    assert incident.Source == "cloudevent,replay"


def test_record_rules_resolve_at_once(runtime: Runtime) -> None:
    outcome = _respond(runtime, "cloudevent-job-cancel")
    assert (outcome.category, outcome.action, outcome.status) == (
        "job",
        "record",
        IncidentStatus.RESOLVED,
    )
    stored = runtime.storage.find_incident(outcome.job_id)
    assert stored is not None and stored.Status == IncidentStatus.RESOLVED
    assert [(a.action, a.state, a.detail) for a in stored.actions] == [
        ("record", "done", "informational: nothing to do")
    ]


def test_unknown_error_is_ticketed_with_the_raw_error(runtime: Runtime) -> None:
    outcome = _respond(runtime, "eventgrid-unknown-error")
    assert (outcome.rule, outcome.action) == ("unclassified", "ticket")
    (incident,) = runtime.storage.incidents.query()
    assert "frobnicator" in incident.ErrorMessage
    assert incident.ErrorCodes == "999001"


@pytest.mark.parametrize(
    "name", ["malformed-not-a-job-id", "malformed-foreign-type", "malformed-error-details"]
)
def test_malformed_events_are_kept_as_rejected(runtime: Runtime, name: str) -> None:
    outcome = _respond(runtime, name)
    assert outcome.kind == OutcomeKind.REJECTED
    (row,) = runtime.storage.rejections.all()
    assert row["Reason"] == outcome.reason
    assert json.loads(row["Payload"]) == load_event(name)
    assert list(runtime.storage.incidents.query()) == []


def test_out_of_scope_subscription_is_rejected(runtime: Runtime) -> None:
    scoped = dataclasses.replace(
        runtime,
        settings=dataclasses.replace(runtime.settings, subscription_ids=frozenset({"other"})),
    )
    outcome = _respond(scoped, "eventgrid-storage-timeout")
    assert outcome.kind == OutcomeKind.REJECTED
    assert "outside this deployment's scope" in outcome.reason
    assert list(runtime.storage.incidents.query()) == []


def test_concurrent_duplicates_make_one_incident(runtime: Runtime) -> None:
    failure = parse(load_event("eventgrid-storage-timeout"))
    kinds = deliver_concurrently(runtime, failure, 6)
    assert sorted(kinds) == [OutcomeKind.DUPLICATE] * 5 + [OutcomeKind.NEW]
    (incident,) = runtime.storage.incidents.query()
    assert incident.Occurrences == 6


def test_abandoned_claim_is_taken_over_after_its_lease(runtime: Runtime) -> None:
    failure = parse(load_event("eventgrid-storage-timeout"))
    past = datetime.now(UTC) - timedelta(hours=1)
    # A delivery that claimed the job and died before writing anything.
    runtime.storage.claims.claim(failure.job_id, ("vm-web-01", "row"), past, timedelta(seconds=60))
    outcome = respond(runtime, failure)
    assert outcome.kind == OutcomeKind.RESUMED
    incident = runtime.storage.find_incident(failure.job_id)
    assert incident is not None and incident.RowKey == "row"
    assert respond(runtime, failure).kind == OutcomeKind.DUPLICATE


def test_live_claim_makes_a_redelivery_wait(runtime: Runtime) -> None:
    failure = parse(load_event("eventgrid-storage-timeout"))
    runtime.storage.claims.claim(
        failure.job_id, ("vm-web-01", "row"), datetime.now(UTC), timedelta(seconds=300)
    )
    with pytest.raises(DeliveryInFlightError):
        respond(runtime, failure)
    assert list(runtime.storage.incidents.query()) == []
