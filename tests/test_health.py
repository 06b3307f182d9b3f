"""The responder watches itself: health checks and Event Grid's dead letters, on Azurite."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.storage.blob import ContainerClient

from handlers.audit import health
from handlers.audit.api import health_answer
from handlers.cli.main import EXIT_FAILED, EXIT_OK, EXIT_UNHEALTHY, main
from handlers.core.outcome import OutcomeKind
from handlers.intake.deadletters import replay
from handlers.intake.watcher import watch
from handlers.pipeline.runtime import Runtime
from handlers.storage import DeadLetterStore
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import AGENT, SUB, scene


@pytest.fixture
def container(runtime: Runtime) -> ContainerClient:
    """The dead-letter container of this test (Event Grid creates the blobs in it)."""
    name = f"{runtime.settings.table_name_prefix.lower()}-deadletter"
    client = ContainerClient.from_connection_string(runtime.settings.storage_connection, name)
    client.create_container()
    return client


@pytest.fixture
def checked(runtime: Runtime, container: ContainerClient) -> Runtime:
    """A runtime whose dead letters are in ``container``."""
    settings = dataclasses.replace(runtime.settings, deadletter_container=container.container_name)
    return Runtime.from_settings(settings, FAST_CLIENTS)


def _dead_lettered(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` as Event Grid keeps it once it gave up: with why and how often it tried."""
    return {
        **event,
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": 30,
        "lastDeliveryOutcome": "Probation",
        "publishTime": "2026-12-05T01:00:00.0000000Z",
    }


def _seed(container: ContainerClient, *events: Any, guid: int = 1) -> str:
    name = f"ON-BACKUP-FAILURE/2026/12/5/1/5b1c2e3a-0000-4000-8000-{guid:012d}.json"
    container.upload_blob(name, json.dumps([_dead_lettered(e) for e in events]))
    return name


def _report(runtime: Runtime) -> health.Health:
    queues = (runtime.retry_queue, runtime.poison_queue)
    now = datetime.now(UTC)
    return health.check(runtime.storage, runtime.settings, runtime.dead_letters, queues, now)


def _status(report: health.Health, name: str) -> str:
    (found,) = [c for c in report.checks if c.name == name]
    return found.status


def test_a_seeded_dead_letter_is_listed_replayed_once_then_counted_as_a_duplicate(
    checked: Runtime, container: ContainerClient
) -> None:
    blob = _seed(container, load_event("cloudevent-vm-not-found"), {"not": "an event"})
    store = checked.dead_letters
    (listed,) = store.blobs()
    assert (listed.name, listed.subscription, listed.replayed_at) == (blob, "ON-BACKUP-FAILURE", "")
    letters = list(store.events(blob))
    assert letters[0].why["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert _status(_report(checked), "dead letters") == health.DEGRADED

    first = list(replay(checked, store, store.blobs()))
    assert [o.kind for r in first for o in r.outcomes] == [
        OutcomeKind.NEW,
        OutcomeKind.REJECTED,  # what cannot be used is kept with the reason, not lost
    ]
    (after,) = store.blobs()
    assert after.replayed_at
    assert _status(_report(checked), "dead letters") == health.OK

    again = list(replay(checked, store, store.blobs()))
    assert again[0].outcomes[0].kind == OutcomeKind.DUPLICATE
    (incident,) = checked.storage.incidents.query()
    assert incident.Occurrences == 2


def test_replaying_keeps_a_blob_s_dead_lettered_time(
    checked: Runtime, container: ContainerClient
) -> None:
    blob = _seed(container, load_event("cloudevent-vm-not-found"))
    created = container.get_blob_client(blob).get_blob_properties().creation_time
    list(replay(checked, checked.dead_letters, checked.dead_letters.blobs()))
    (replayed,) = checked.dead_letters.blobs()
    assert replayed.replayed_at and replayed.dead_lettered_at == created


def test_the_dead_lettered_time_is_when_the_blob_was_created_not_last_changed() -> None:
    """Marking a blob replayed changes its Last-Modified: the dead-lettered time and the
    order are its creation's."""
    replayed_now = datetime(2026, 12, 9, 8, tzinfo=UTC)
    listed = [
        SimpleNamespace(
            name=f"S/2026/12/{day}/1/x.json",
            creation_time=datetime(2026, 12, day, 1, tzinfo=UTC),
            last_modified=replayed_now if mark else datetime(2026, 12, day, 1, tzinfo=UTC),
            metadata={"replayed": replayed_now.isoformat()} if mark else {},
        )
        for day, mark in ((6, True), (7, False))
    ]
    store = DeadLetterStore(SimpleNamespace(list_blobs=lambda include: listed))
    blobs = store.blobs()
    assert [b.dead_lettered_at.day for b in blobs] == [6, 7]


def test_a_dead_lettered_vm_deletion_goes_the_vm_deleted_way(
    live: Runtime, sim: AzureSimulator, container: ContainerClient
) -> None:
    acting = Runtime.from_settings(
        dataclasses.replace(live.settings, deadletter_container=container.container_name),
        FAST_CLIENTS,
    )
    s = scene(sim, AGENT)
    sim.delete_vm(s.vm_id)
    deletion = load_event("resource-delete-vm")
    deletion["subject"] = deletion["data"]["resourceUri"] = s.vm_id
    _seed(container, deletion)
    store = acting.dead_letters
    (replayed,) = replay(acting, store, store.blobs())
    (outcome,) = replayed.outcomes
    assert (outcome.kind, outcome.rule) == (OutcomeKind.NEW, "vm-not-found")
    assert len(sim.calls_to(route="item_put")) == 1  # stopped, data kept


def test_a_missing_dead_letter_container_holds_nothing(runtime: Runtime) -> None:
    assert runtime.dead_letters.blobs() == []


def test_health_before_any_watcher_run_is_unhealthy(checked: Runtime) -> None:
    report = _report(checked)
    assert report.status == health.UNHEALTHY
    assert _status(report, "watcher") == health.UNHEALTHY
    code, body = health_answer(
        checked.storage,
        checked.settings,
        checked.dead_letters,
        (checked.retry_queue, checked.poison_queue),
    )
    assert code == 503 and body["status"] == "unhealthy"


@pytest.fixture
def watching(checked: Runtime, sim: AzureSimulator, receivers: Receivers) -> Runtime:
    """``checked`` with a watcher of the simulator's subscription ``SUB``."""
    return Runtime.from_settings(
        dataclasses.replace(
            checked.settings,
            subscription_ids=frozenset({SUB}),
            management_url=sim.base_url,
            ca_bundle=sim.ca_pem_path,
            static_token="sim-token",
            eventgrid_endpoint=receivers.url("eventgrid") + "/api/events",
            eventgrid_key="topic-key",
        ),
        FAST_CLIENTS,
    )


def test_health_after_a_good_watcher_run_is_ok(watching: Runtime, sim: AzureSimulator) -> None:
    sim.add_vault(SUB, "rg-backup", "rsv-health")
    watch(watching)
    report = _report(watching)
    assert report.status == health.OK, report.as_json()
    code, body = health_answer(
        watching.storage,
        watching.settings,
        watching.dead_letters,
        (watching.retry_queue, watching.poison_queue),
    )
    assert code == 200 and {c["name"] for c in body["checks"]} >= {"watcher", "vaults"}


def test_failing_polls_stale_claims_and_poison_messages_are_reported(checked: Runtime) -> None:
    now = datetime.now(UTC)
    checkpoints = checked.storage.checkpoints
    checkpoints.record_run(now, now, Published=0, VaultErrors=1, Deferred=False)
    for _ in range(health.FAILING_POLLS):
        checkpoints.record_poll(
            "/subscriptions/s/resourceGroups/g/providers/x/vaults/v", now, "boom"
        )
    checked.storage.claims.claim("job-died", ("vm", "row"), now - timedelta(hours=1), timedelta(0))
    checked.poison_queue.send('{"kind": "retry"}', 0)
    report = _report(checked)
    assert _status(report, "vaults") == health.UNHEALTHY
    assert _status(report, "claims") == health.DEGRADED
    assert _status(report, "retry queue") == health.DEGRADED
    assert report.status == health.UNHEALTHY
    (vaults,) = [c for c in report.checks if c.name == "vaults"]
    assert "3 failed poll(s) in a row" in vaults.details[0] and "boom" in vaults.details[0]


def test_a_vault_listing_that_works_again_ends_its_failures(
    watching: Runtime, sim: AzureSimulator
) -> None:
    sim.add_vault(SUB, "rg-backup", "rsv-health")
    for _ in range(health.FAILING_POLLS):
        sim.faults.add("vault_list", "403", times=1)
        watch(watching)
    assert _status(_report(watching), "vaults") == health.UNHEALTHY
    watch(watching)
    report = _report(watching)
    assert _status(report, "vaults") == health.OK, report.as_json()


def test_vaults_no_longer_polled_are_flagged_then_forgotten(checked: Runtime) -> None:
    """A vault deleted after a failed poll, or one dropped from the listing after good polls,
    is neither failing nor healthy for ever: flagged while recent, forgotten after a day."""
    now = datetime.now(UTC)
    checkpoints = checked.storage.checkpoints
    checkpoints.record_run(now, now, Published=0, VaultErrors=0, Deferred=False)
    vault = "/subscriptions/s/resourceGroups/g/providers/x/vaults/"
    period = health.schedule_period(checked.settings.watch_schedule)
    left = now - (health.UNPOLLED_PERIODS + 1) * period
    for _ in range(health.FAILING_POLLS):
        checkpoints.record_poll(vault + "deleted", left, "boom")
        checkpoints.record_poll(vault + "long-gone", now - timedelta(days=2), "boom")
    checkpoints.record_poll(vault + "dropped", left)
    checkpoints.record_poll(vault + "watched", now)
    report = _report(checked)
    (vaults,) = [c for c in report.checks if c.name == "vaults"]
    assert vaults.status == health.DEGRADED, vaults
    flagged = sorted(d.split(":")[0].rsplit("/", 1)[-1] for d in vaults.details)
    assert flagged == ["deleted", "dropped"]
    assert all("not polled since" in d for d in vaults.details)


def test_a_stale_watcher_is_unhealthy(checked: Runtime) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    checked.storage.checkpoints.record_run(long_ago, long_ago, Published=1, VaultErrors=0)
    assert _status(_report(checked), "watcher") == health.UNHEALTHY


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(checked: Runtime, as_app_settings: Any) -> Runtime:
    """The CLI reads the same app settings as the function."""
    return as_app_settings(checked.settings)


def test_the_health_command_exits_by_status_and_prints_every_check(cli_env: Runtime) -> None:
    out = io.StringIO()
    assert main(["health"], out=out) == EXIT_UNHEALTHY  # the watcher never ran
    text = out.getvalue()
    assert "health: unhealthy" in text
    assert all(name in text for name in ("watcher", "vaults", "dead letters", "retry queue"))
    out = io.StringIO()
    assert main(["health", "--format", "json"], out=out) == EXIT_UNHEALTHY
    assert json.loads(out.getvalue())["status"] == health.UNHEALTHY


@pytest.mark.parametrize(
    "failure",
    [
        ServiceRequestError("Connection refused"),
        ClientAuthenticationError("login refused"),
        ResourceNotFoundError("The table specified does not exist"),
    ],
)
def test_a_health_check_that_cannot_run_is_unhealthy(
    cli_env: Runtime, monkeypatch: Any, failure: Exception
) -> None:
    """Storage unreachable or a login refused: the command says so and exits 3, never 1
    ("degraded"), so a job that pages on 3 sees a complete outage."""

    def fail(*_: Any) -> health.Health:
        raise failure

    monkeypatch.setattr(health, "check", fail)
    out, err = io.StringIO(), io.StringIO()
    assert main(["health"], out=out, err=err) == EXIT_UNHEALTHY
    assert "unhealthy: the check itself failed" in err.getvalue() and str(failure) in err.getvalue()
    out = io.StringIO()
    assert main(["health", "--format", "json"], out=out, err=err) == EXIT_UNHEALTHY
    assert json.loads(out.getvalue())["status"] == health.UNHEALTHY


def test_deadletter_commands_list_replay_once_then_count_a_duplicate(
    cli_env: Runtime, container: ContainerClient
) -> None:
    blob = _seed(container, load_event("cloudevent-vm-not-found"))
    out = io.StringIO()
    assert main(["deadletter", "list"], out=out) == EXIT_OK
    assert "MaxDeliveryAttemptsExceeded" in out.getvalue()
    assert "(1 event(s); 1 blob(s) not replayed yet)" in out.getvalue()

    out = io.StringIO()
    assert main(["deadletter", "replay"], out=out) == EXIT_OK
    assert out.getvalue().startswith("new ")
    assert f"<- {blob}[0]" in out.getvalue()

    out = io.StringIO()
    assert main(["deadletter", "replay"], out=out) == EXIT_OK  # nothing waits now
    assert out.getvalue() == "0 event(s) of 0 blob(s) replayed\n"
    out = io.StringIO()
    assert main(["deadletter", "replay", "--all"], out=out) == EXIT_OK
    assert out.getvalue().startswith("duplicate ")
    (incident,) = cli_env.storage.incidents.query()
    assert incident.Occurrences == 2

    out = io.StringIO()
    assert main(["deadletter", "list", "--all", "--format", "json"], out=out) == EXIT_OK
    (row,) = json.loads(out.getvalue())
    assert row["blob"] == blob and row["replayedAt"] and row["why"]["deliveryAttempts"] == 30


def test_a_blob_whose_replay_fails_is_reported_and_the_others_are_replayed(
    cli_env: Runtime, container: ContainerClient
) -> None:
    """An event another delivery is handling (a live claim) stops its own blob, which stays
    unmarked for the next replay; the blobs after it are replayed; the command exits 1."""
    event = load_event("cloudevent-vm-not-found")
    claims = cli_env.storage.claims
    claims.claim(event["data"]["name"], ("vm", "row"), datetime.now(UTC), timedelta(hours=1))
    busy = _seed(container, event, guid=1)
    other = _seed(container, {"not": "an event"}, guid=2)
    out = io.StringIO()
    assert main(["deadletter", "replay"], out=out) == EXIT_FAILED
    text = out.getvalue()
    assert f"failed: DeliveryInFlightError: job {event['data']['name']}" in text
    assert f"<- {busy}[0] (blob left for the next replay)" in text
    assert "rejected " in text and f"<- {other}[0]" in text
    assert text.endswith("1 event(s) of 2 blob(s) replayed, 1 blob(s) failed\n")
    marked = {b.name: b.replayed_at for b in cli_env.dead_letters.blobs()}
    assert not marked[busy] and marked[other]
