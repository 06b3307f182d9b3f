"""The spine end to end on Azurite: classify, record once, count repeats, reject bad input."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from handlers.events import parse
from handlers.incident import OPEN, RESOLVED
from handlers.respond import DUPLICATE, NEW, REJECTED, RESUMED, respond
from handlers.runtime import Runtime
from handlers.store import DeliveryInFlightError
from tests.conftest import load_event
from tests.world import deliver_concurrently


def _respond(runtime: Runtime, name: str):
    return respond(parse(load_event(name)), runtime)


def test_first_delivery_records_a_classified_incident(runtime: Runtime) -> None:
    outcome = _respond(runtime, "eventgrid-storage-timeout")
    assert (outcome.kind, outcome.action, outcome.status) == (NEW, "retry", OPEN)
    incident = runtime.store.find_incident("c1a2b3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b")
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
    second = _respond(runtime, "cloudevent-vm-not-found")
    assert (first.kind, second.kind) == (NEW, DUPLICATE)
    assert second.occurrences == 2
    incidents = list(runtime.store.incidents())
    assert len(incidents) == 1
    assert incidents[0].Occurrences == 2
    assert incidents[0].PlannedAction == "stop_protection"


def test_same_job_from_two_sources_is_one_incident(runtime: Runtime) -> None:
    cloud = load_event("cloudevent-vm-not-found")
    respond(parse(cloud), runtime)
    outcome = respond(parse(cloud["data"]), runtime)  # the bare job, e.g. from the watcher
    assert outcome.kind == DUPLICATE
    (incident,) = runtime.store.incidents()
    assert incident.Source == "cloudevent,replay"


def test_record_rules_resolve_at_once(runtime: Runtime) -> None:
    outcome = _respond(runtime, "cloudevent-job-cancel")
    assert (outcome.category, outcome.action, outcome.status) == ("job", "record", RESOLVED)


def test_unknown_error_is_ticketed_with_the_raw_error(runtime: Runtime) -> None:
    outcome = _respond(runtime, "eventgrid-unknown-error")
    assert (outcome.rule, outcome.action) == ("unclassified", "ticket")
    (incident,) = runtime.store.incidents()
    assert "frobnicator" in incident.ErrorMessage
    assert incident.ErrorCodes == "999001"


@pytest.mark.parametrize(
    "name", ["malformed-not-a-job-id", "malformed-foreign-type", "malformed-error-details"]
)
def test_malformed_events_are_kept_as_rejected(runtime: Runtime, name: str) -> None:
    outcome = _respond(runtime, name)
    assert outcome.kind == REJECTED
    (row,) = runtime.store.rejections()
    assert row["Reason"] == outcome.reason
    assert json.loads(row["Payload"]) == load_event(name)
    assert list(runtime.store.incidents()) == []


def test_out_of_scope_subscription_is_rejected(runtime: Runtime) -> None:
    scoped = dataclasses.replace(
        runtime,
        settings=dataclasses.replace(runtime.settings, subscription_ids=frozenset({"other"})),
    )
    outcome = _respond(scoped, "eventgrid-storage-timeout")
    assert outcome.kind == REJECTED
    assert "outside this deployment's scope" in outcome.reason
    assert list(runtime.store.incidents()) == []


def test_concurrent_duplicates_make_one_incident(runtime: Runtime) -> None:
    failure = parse(load_event("eventgrid-storage-timeout"))
    kinds = deliver_concurrently(runtime, failure, 6)
    assert sorted(kinds) == [DUPLICATE] * 5 + [NEW]
    (incident,) = runtime.store.incidents()
    assert incident.Occurrences == 6


def test_abandoned_claim_is_taken_over_after_its_lease(runtime: Runtime) -> None:
    failure = parse(load_event("eventgrid-storage-timeout"))
    past = datetime.now(UTC) - timedelta(hours=1)
    # A delivery that claimed the job and died before writing anything.
    runtime.store.claim(failure.job_id, ("vm-web-01", "row"), past, lease_seconds=60)
    outcome = respond(failure, runtime)
    assert outcome.kind == RESUMED
    incident = runtime.store.find_incident(failure.job_id)
    assert incident is not None and incident.RowKey == "row"
    assert respond(failure, runtime).kind == DUPLICATE


def test_live_claim_makes_a_redelivery_wait(runtime: Runtime) -> None:
    failure = parse(load_event("eventgrid-storage-timeout"))
    runtime.store.claim(failure.job_id, ("vm-web-01", "row"), datetime.now(UTC), lease_seconds=300)
    with pytest.raises(DeliveryInFlightError):
        respond(failure, runtime)
    assert list(runtime.store.incidents()) == []
