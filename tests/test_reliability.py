"""Reliability: duplicates at scale, a storage outage mid-batch, Azure API fault storms, and a
watcher that loses nothing when a run runs out of time."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import AzureError

from handlers.azure.backup import ItemApi
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.core.incident import Incident, IncidentStatus
from handlers.core.outcome import Outcome, OutcomeKind
from handlers.core.settings import Settings
from handlers.intake.eventgrid import handle_failure_event
from handlers.intake.retry_queue import run_retry
from handlers.intake.watcher import watch
from handlers.pipeline.runtime import Runtime
from handlers.storage import DeliveryInFlightError
from sandbox.azurite import Azurite
from sandbox.clock import SimulatedClock
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, live_settings
from tests.world import (
    AGENT,
    STORAGE_TIMEOUT,
    SUB,
    VM_GONE,
    Scene,
    as_trigger_input,
    deliver,
    drain,
    incident_of,
    log_of,
    scene,
)


class _Topic:
    """An in-process stand-in for the topic publisher: remembers every event sent."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def send(self, events: list[Any]) -> None:
        self.events.extend(events)


# -- the watcher ---------------------------------------------------------------------------


def test_jobs_that_ended_together_are_not_lost_when_a_run_is_cut(
    live: Runtime, sim: AzureSimulator
) -> None:
    """A regional outage fails many jobs at the same moment; a run that runs out of time in
    the middle of them must not move its checkpoint past the ones it left."""
    clock = SimulatedClock()
    settings = dataclasses.replace(
        live.settings,
        subscription_ids=frozenset({SUB}),
        dry_run=True,
        arm_reads_per_second=10,
        arm_read_burst=1,
        watch_time_budget_seconds=12,  # runs out in the middle of the jobs that ended together
    )
    budgeted = Runtime.from_settings(settings, FAST_CLIENTS, clock.pace())
    at = datetime.now(UTC) - timedelta(hours=6)
    first = scene(sim, STORAGE_TIMEOUT, vm_name="vm-tied", started=at)

    def job(start: datetime, end: datetime) -> str:
        return sim.add_job(
            first.vault["id"],
            vm_name=first.vm_name,
            vm_resource_group=first.vm_group,
            error_code=STORAGE_TIMEOUT[0],
            error_string=STORAGE_TIMEOUT[1],
            start_time=start,
            end_time=end,
        )["name"]

    tied_end = at + timedelta(hours=2)
    jobs = {first.job_id}
    jobs |= {job(at + timedelta(minutes=i), at + timedelta(minutes=i + 1)) for i in range(1, 95)}
    # 60 jobs end at the same moment (across the 100-job chunk boundary too) ...
    jobs |= {job(at + timedelta(minutes=100), tied_end) for _ in range(60)}
    # ... and more end after them.
    jobs |= {
        job(at + timedelta(minutes=101 + i), tied_end + timedelta(minutes=i + 1)) for i in range(35)
    }
    topic = _Topic()
    cut = watch(budgeted, topic)
    # About 115 details read in 12 s: the run stops among the tied jobs and publishes none
    # of them, so its checkpoint stays before their moment.
    assert cut.deferred and cut.total == 95
    for _ in range(3):
        watch(budgeted, topic)
    published = [e.data["name"] for e in topic.events]
    assert sorted(published) == sorted(jobs)  # every job, each once


# -- duplicates at scale -------------------------------------------------------------------

SCALE_MIX = [(STORAGE_TIMEOUT, 280), (AGENT, 200), (VM_GONE, 20)]


@pytest.mark.slow
def test_500_failures_delivered_three_times_concurrently_act_once_each(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    """Every failure arrives three times at once (Event Grid redelivery, the watcher and an
    alert); each is one incident, counted three times, and one action."""
    quiet = Runtime.from_settings(
        dataclasses.replace(
            live.settings,
            devops_org_url="",
            ticket_webhook_url="",
            teams_webhook_url="",
            notify_webhook_url="",
        ),
        FAST_CLIENTS,
    )
    scenes = []
    for error, count in SCALE_MIX:
        for _ in range(count):
            s = scene(sim, error, vm_name=f"vm-{len(scenes):03d}")
            if error == VM_GONE:
                sim.delete_vm(s.vm_id)
            scenes.append((error, s))
    deliveries = [s for _, s in scenes for _ in range(3)]  # copies side by side: they collide
    kinds: dict[str, list[str]] = defaultdict(list)
    lock = threading.Lock()

    def until_handled(s: Scene) -> None:
        while True:
            try:
                outcome = deliver(quiet, s.event())
                break
            except DeliveryInFlightError:  # the platform redelivers it later
                time.sleep(0.05)
        with lock:
            kinds[s.job_id].append(outcome.kind)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(until_handled, deliveries))

    assert all(
        sorted(k) == [OutcomeKind.DUPLICATE, OutcomeKind.DUPLICATE, OutcomeKind.NEW]
        for k in kinds.values()
    )
    assert len(kinds) == 500
    incidents = {i.JobId: i for i in quiet.storage.incidents.query()}
    assert len(incidents) == 500
    assert {i.Occurrences for i in incidents.values()} == {3}
    for error, s in scenes:
        actions = log_of(incidents[s.job_id])
        if error == STORAGE_TIMEOUT:
            assert actions.count(("retry", "scheduled")) == 1
        elif error == AGENT:
            assert actions.count(("ticket", "opened")) == 1
        else:
            assert actions.count(("stop_protection", "succeeded")) == 1
    # One retry message per retry incident, one ticket per ticket or stop incident, one
    # protection change per deleted VM.
    messages = []
    while batch := list(quiet.retry_queue.receive(max_messages=32, visibility_seconds=60)):
        messages += [json.loads(m.content.decode()) for m in batch]
    retried = [s.job_id for error, s in scenes if error == STORAGE_TIMEOUT]
    assert sorted(incidents[j].RowKey for j in retried) == sorted(m["rk"] for m in messages)
    opened = [r.body["correlation_id"] for r in receivers.received("servicenow")]
    assert sorted(opened) == sorted(s.job_id for error, s in scenes if error != STORAGE_TIMEOUT)
    puts = [c.path for c in sim.calls_to(route="item_put")]
    assert len(puts) == len(set(puts)) == 20
    assert receivers.violations == []


# -- a storage outage in the middle of a batch ---------------------------------------------


class _Storage:
    """An Azurite of its own that keeps its data on disk, so that it can be stopped (the
    outage) and started again on the same ports with the same data."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self.azurite = Azurite(location=location).start()

    @property
    def connection_string(self) -> str:
        return self.azurite.connection_string

    def stop(self) -> None:
        self.azurite.stop()

    def restart(self) -> None:
        self.azurite = Azurite(location=self.location, ports=self.azurite.ports).start()


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[_Storage]:
    running = _Storage(tmp_path)
    yield running
    running.stop()


def _on_storage(storage: _Storage, sim: AzureSimulator, receivers: Receivers) -> Runtime:
    settings = live_settings(
        Settings(storage_connection=storage.connection_string, table_name_prefix="outage"),
        sim,
        receivers,
        claim_lease_seconds=1,
        devops_org_url="",
        ticket_webhook_url="",
        teams_webhook_url="",
        notify_webhook_url="",
    )
    return Runtime.from_settings(settings, FAST_CLIENTS)


def _half_recorded(incident: Incident) -> list[str]:
    """Action intents (``started``) with no outcome after them."""
    open_intents: list[str] = []
    for entry in incident.actions:
        if entry.state == "started":
            open_intents.append(entry.action)
        elif entry.action in open_intents and entry.state in ("succeeded", "triggered", "failed"):
            open_intents.remove(entry.action)
    return open_intents


@pytest.mark.slow
def test_storage_outage_mid_batch_then_redelivery_handles_every_event_once(
    storage: _Storage, sim: AzureSimulator, receivers: Receivers, monkeypatch: Any
) -> None:
    runtime = _on_storage(storage, sim, receivers)
    errors = [STORAGE_TIMEOUT, AGENT, VM_GONE] * 4
    scenes = [scene(sim, error, vm_name=f"vm-{i:02d}") for i, error in enumerate(errors)]
    for error, s in zip(errors, scenes, strict=True):
        if error == VM_GONE:
            sim.delete_vm(s.vm_id)
    crashing = scenes[5]  # the second stop-protection of the batch
    stop_for_real = ItemApi.stop_protection

    def stop_then_storage_vanishes(api: ItemApi, source_resource_id: str = "") -> str:
        state = stop_for_real(api, source_resource_id)
        if api.item.vm_name == crashing.vm_name:
            storage.stop()  # after the change in Azure, before its outcome is recorded
        return state

    def on_backup_failure(s: Scene) -> Outcome:  # the trigger's handler, as the worker calls it
        return handle_failure_event(runtime, as_trigger_input(s.event()))

    monkeypatch.setattr(ItemApi, "stop_protection", stop_then_storage_vanishes)
    for s in scenes[:5]:
        assert on_backup_failure(s).kind == OutcomeKind.NEW
    for s in scenes[5:8]:  # the function raises: the platform will redeliver
        with pytest.raises(AzureError):
            on_backup_failure(s)
    storage.restart()
    time.sleep(1.1)  # the redelivery comes after the crashed delivery's lease
    kinds = [on_backup_failure(s).kind for s in scenes]  # redelivery, and the rest

    assert kinds == [OutcomeKind.DUPLICATE] * 5 + [OutcomeKind.RESUMED] + [OutcomeKind.NEW] * 6
    incidents = {i.JobId: i for i in runtime.storage.incidents.query()}
    assert len(incidents) == 12
    assert all(_half_recorded(i) == [] for i in incidents.values())
    crashed = log_of(incidents[crashing.job_id])
    assert crashed.count(("stop_protection", "started")) == 1
    assert crashed.count(("stop_protection", "succeeded")) == 1
    assert crashed.count(("ticket", "opened")) == 1
    assert incidents[crashing.job_id].Status == IncidentStatus.RESOLVED
    puts = [c.path for c in sim.calls_to(route="item_put")]
    assert len(puts) == len(set(puts)) == 4  # one change per deleted VM, none repeated
    tickets = [r.body["correlation_id"] for r in receivers.received("servicenow")]
    assert sorted(tickets) == sorted(
        s.job_id for e, s in zip(errors, scenes, strict=True) if e != STORAGE_TIMEOUT
    )
    claims = set(runtime.storage.claims.states().values())
    assert claims == {"done"}
    sim.auto_complete_backups = "Completed"
    drain(runtime)  # the retry messages survived the outage: one backup per retry incident
    assert len(sim.calls_to(route="backup_trigger")) == 4
    assert receivers.violations == []


def test_retry_interrupted_between_backup_start_and_its_record_is_not_started_twice(
    storage: _Storage, sim: AzureSimulator, receivers: Receivers, monkeypatch: Any
) -> None:
    runtime = _on_storage(storage, sim, receivers)
    s = scene(sim, STORAGE_TIMEOUT)
    deliver(runtime, s.event())
    (message,) = runtime.retry_queue.receive(visibility_seconds=1)
    trigger_for_real = ItemApi.trigger_backup

    def trigger_then_storage_vanishes(api: ItemApi, expiry_days: int) -> str:
        operation = trigger_for_real(api, expiry_days)
        storage.stop()
        return operation

    monkeypatch.setattr(ItemApi, "trigger_backup", trigger_then_storage_vanishes)
    with pytest.raises(AzureError):
        run_retry(runtime, message.content.decode(), message.dequeue_count, message.id)
    storage.restart()
    time.sleep(1.1)  # the message becomes visible again: the host redelivers it
    (again,) = runtime.retry_queue.receive(visibility_seconds=30)
    assert again.dequeue_count == 2
    run_retry(runtime, again.content.decode(), again.dequeue_count, again.id)
    runtime.retry_queue.delete(again)

    assert len(sim.calls_to(route="backup_trigger")) == 1
    incident = incident_of(runtime, s.job_id)
    assert log_of(incident).count(("retry", "started")) == 1
    (triggered,) = [a for a in incident.actions if a.state == "triggered"]
    ours = sim.get_job(s.vault["id"], triggered.ref)["properties"]
    assert triggered.ref != s.job_id and ours["operation"] == "Backup"
    assert ours["startTime"] > s.job["properties"]["startTime"]  # the backup the retry started
    counters = runtime.storage.counters.counts()
    assert counters == [1, 1]  # the daily attempt and the stagger slot, each taken once
    sim.complete_job(s.vault["id"], triggered.ref, status="Completed")
    drain(runtime)
    assert incident_of(runtime, s.job_id).Status == IncidentStatus.RESOLVED
    assert len(sim.calls_to(route="backup_trigger")) == 1


# -- Azure API fault storms ------------------------------------------------------------------

#: One retry per call (two attempts), and a read timeout short enough for latency faults.
STORM_CLIENTS = {**FAST_CLIENTS, "retry_total": 1, "read_timeout": 0.4}
ATTEMPTS = 2
LATENCY = 0.6
STOP_ROUTES = ["job_get", "vm_get", "vm_list", "item_get", "item_put"]


def _fails_at(sim: AzureSimulator, route: str, kind: str, attempt: Any) -> None:
    """``attempt()`` fails at ``route``: every attempt the SDK makes there meets the fault,
    and one more attempt would have gone through (so the retries are bounded)."""
    sim.faults.add(route, kind, times=ATTEMPTS, retry_after=0, delay=LATENCY)
    try:
        with pytest.raises(AzureCallError) as raised:
            attempt()
    finally:
        sim.faults.clear()
    assert raised.value.kind == ErrorKind.UNAVAILABLE
    if kind == "latency":
        time.sleep(LATENCY)  # the platform redelivers later than the slow answer arrives


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["429", "500", "latency", "drop"])
def test_fault_storms_give_bounded_retries_recorded_outcomes_and_no_duplicate_actions(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, kind: str
) -> None:
    stormy = Runtime.from_settings(
        dataclasses.replace(live.settings, claim_lease_seconds=0), STORM_CLIENTS
    )
    # Stop protection: each delivery meets the storm at the next route, then one gets through.
    gone = scene(sim, VM_GONE, vm_name="vm-gone")
    sim.delete_vm(gone.vm_id)
    for route in STOP_ROUTES:
        _fails_at(sim, route, kind, lambda: deliver(stormy, gone.event()))
    assert deliver(stormy, gone.event()).status == IncidentStatus.RESOLVED
    incident = incident_of(stormy, gone.job_id)
    failed = [a for a in incident.actions if a.state == "failed"]
    assert len(failed) == len(STOP_ROUTES)
    assert all(a.action == "stop_protection" and a.detail.startswith("unavailable") for a in failed)
    assert log_of(incident).count(("stop_protection", "succeeded")) == 1
    assert log_of(incident).count(("ticket", "opened")) == 1
    item = sim.get_protected_item(gone.vault["id"], gone.vm_name, gone.vm_group)
    assert item["properties"]["protectionState"] == "ProtectionStopped"

    # Retries: the storm at the backup trigger, or at the operation that follows it.
    for route in ("backup_trigger", "item_operation_status"):
        s = scene(sim, STORAGE_TIMEOUT, vm_name=f"vm-{route}")
        deliver(stormy, s.event())
        (message,) = stormy.retry_queue.receive(visibility_seconds=60)
        stormy.retry_queue.delete(message)
        body = message.content.decode()
        first = message.id
        _fails_at(
            sim, route, kind, lambda body=body, first=first: run_retry(stormy, body, 1, first)
        )
        run_retry(stormy, body, 2, first)
        incident = incident_of(stormy, s.job_id)
        (triggered,) = [a for a in incident.actions if a.state == "triggered"]
        if sim.get_job(s.vault["id"], triggered.ref)["properties"]["status"] == "InProgress":
            sim.complete_job(s.vault["id"], triggered.ref, status="Completed")
        (follow_up,) = stormy.retry_queue.receive(visibility_seconds=60)
        stormy.retry_queue.delete(follow_up)
        body = follow_up.content.decode()
        second = follow_up.id
        _fails_at(
            sim,
            "job_get",
            kind,
            lambda body=body, second=second: run_retry(stormy, body, 1, second),
        )
        run_retry(stormy, body, 2, second)
        incident = incident_of(stormy, s.job_id)
        assert incident.Status == IncidentStatus.RESOLVED
        assert [a.state for a in incident.actions if a.action == "retry"].count("failed") == 2
        started = [
            c for c in sim.calls_to(route="backup_trigger") if s.vm_name in c.path and c.status
        ]
        assert [c.status for c in started if c.status == 202] == [202]  # one backup, once
    assert receivers.violations == []
