"""Every way a failure reaches us: the job watcher, Backup Failure alerts, VM-deleted events."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest

from handlers.core.incident import IncidentStatus
from handlers.core.outcome import OutcomeKind
from handlers.intake import watcher
from handlers.intake.alerts import handle_alert
from handlers.intake.vm_deleted import handle_vm_deleted
from handlers.intake.watcher import chunks, watch
from handlers.pipeline.runtime import Runtime
from sandbox.clock import SimulatedClock
from sandbox.receivers import EVENTGRID_KEY, Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import (
    AGENT,
    STORAGE_TIMEOUT,
    SUB,
    VAULT_PREFIX,
    VAULT_RG,
    VM_GONE,
    as_trigger_input,
    deliver_published,
    incident_of,
    log_of,
    published,
    scene,
)

NOW = datetime.now(UTC)


@pytest.fixture
def watching(live: Runtime, receivers: Receivers) -> Runtime:
    settings = dataclasses.replace(
        live.settings,
        subscription_ids=frozenset({SUB}),
        eventgrid_endpoint=receivers.url("eventgrid") + "/api/events",
        eventgrid_key=EVENTGRID_KEY,
        dry_run=True,
    )
    return Runtime.from_settings(settings, FAST_CLIENTS)


def _failed_jobs(sim: AzureSimulator, vault: str, count: int, start: datetime) -> list[str]:
    first = scene(sim, STORAGE_TIMEOUT, vm_name=f"{vault}-vm0", vault=vault, started=start)
    jobs = [first.job_id]
    for i in range(1, count):
        later = start + timedelta(minutes=i)
        repeat = first.repeat(
            STORAGE_TIMEOUT, start_time=later, end_time=later + timedelta(minutes=30)
        )
        jobs.append(repeat.job_id)
    return jobs


# -- the watcher -----------------------------------------------------------------------------


def test_watcher_publishes_each_failed_job_once_across_vaults_and_pages(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    sim.page_size = 10
    start = NOW - timedelta(hours=3)
    expected = set(_failed_jobs(sim, "vault-a", 25, start) + _failed_jobs(sim, "vault-b", 3, start))
    sim.add_job(
        f"/subscriptions/{SUB}/resourceGroups/{VAULT_RG}/providers/Microsoft.RecoveryServices/vaults/vault-b",
        vm_name="vault-b-vm0",
        vm_resource_group="rg-web",
        status="Completed",
        error_code=None,
    )
    report = watch(watching)
    events = published(receivers)
    assert {e["data"]["name"] for e in events} == expected
    assert len(events) == len(expected)
    assert report.total == 28 and report.errors == {}
    assert all(
        e["type"] == "BackupResponder.BackupJobFailed" and e["subject"].startswith("backupJobs/")
        for e in events
    )
    assert all(
        e["data"]["properties"]["errorDetails"] for e in events
    )  # details, not the list view
    assert (
        len(
            [
                c
                for c in sim.calls_to(route="job_list")
                if "skiptoken" in json.dumps(c.query).lower()
            ]
        )
        >= 2
    )
    assert receivers.violations == []
    watch(watching)  # nothing new: nothing published
    assert len(published(receivers)) == len(expected)


def test_checkpoint_moves_only_after_a_successful_publish(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    jobs = _failed_jobs(sim, "vault-a", 2, NOW - timedelta(hours=2))
    vault_id = f"{VAULT_PREFIX}/vault-a"
    receivers.fail("eventgrid", 403)
    report = watch(watching)
    assert vault_id in report.errors
    assert watching.storage.checkpoints.get(vault_id) is None
    watch(watching)
    assert {e["data"]["name"] for e in published(receivers)} == set(jobs)
    assert watching.storage.checkpoints.get(vault_id) is not None


def test_a_failing_vault_does_not_block_the_others(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    good = _failed_jobs(sim, "vault-good", 2, NOW - timedelta(hours=2))
    _failed_jobs(sim, "vault-bad", 2, NOW - timedelta(hours=2))
    sim.faults.add("job_list", "403", times=1)  # the first vault listed fails
    report = watch(watching)
    assert len(report.errors) == 1
    names = {e["data"]["name"] for e in published(receivers)}
    assert names == set(good) or len(names) == 2


def test_the_watcher_records_each_vaults_poll_and_its_run(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers, monkeypatch: Any
) -> None:
    monkeypatch.setattr(watcher, "VAULT_WORKERS", 1)  # one vault at a time: "the first listed"
    _failed_jobs(sim, "vault-good", 1, NOW - timedelta(hours=2))
    _failed_jobs(sim, "vault-bad", 1, NOW - timedelta(hours=2))
    for _ in range(2):  # the first vault listed fails in both runs
        sim.faults.add("job_list", "403", times=1)
        watch(watching)
    rows = {p["VaultId"]: p for p in watching.storage.checkpoints.polls()}
    listing = rows.pop(f"/subscriptions/{SUB}")  # the subscription's vault listing worked
    assert listing["ConsecutiveFailures"] == 0 and listing["LastSuccessAt"]
    polls = {vault.rsplit("/", 1)[-1]: p for vault, p in rows.items()}
    failing = [p for p in polls.values() if p["ConsecutiveFailures"]]
    healthy = [p for p in polls.values() if not p["ConsecutiveFailures"]]
    assert len(failing) == len(healthy) == 1
    assert failing[0]["ConsecutiveFailures"] == 2 and "denied" in failing[0]["LastError"]
    assert "LastSuccessAt" not in failing[0] and healthy[0]["LastSuccessAt"]
    run = watching.storage.checkpoints.last_run()
    assert run is not None and run["VaultErrors"] == 1 and run["EndedAt"] >= run["StartedAt"]


def _paced(runtime: Runtime, clock: SimulatedClock, **changes: Any) -> Runtime:
    """The runtime on a simulated clock: 10 ARM reads a second, no burst, and ``changes``."""
    settings = dataclasses.replace(
        runtime.settings, arm_reads_per_second=10, arm_read_burst=1, **changes
    )
    return Runtime.from_settings(settings, FAST_CLIENTS, clock.pace())


class _Topic:
    """The topic publisher in process: keeps what was sent; ``fail_from`` makes the n-th send
    (counting from 1) and every later one fail."""

    def __init__(self, fail_from: int = 0) -> None:
        self.events: list[Any] = []
        self.sends = 0
        self.fail_from = fail_from

    def send(self, events: list[Any]) -> None:
        self.sends += 1
        if self.fail_from and self.sends >= self.fail_from:
            raise ConnectionError("the topic is unreachable")
        self.events.extend(events)

    @property
    def names(self) -> list[str]:
        return [e.data["name"] for e in self.events]


def test_a_run_stops_at_its_time_budget_and_the_next_resumes_with_nothing_lost_or_repeated(
    watching: Runtime, sim: AzureSimulator
) -> None:
    clock = SimulatedClock()
    budgeted = _paced(watching, clock, watch_time_budget_seconds=15)
    jobs = _failed_jobs(sim, "vault-a", 250, NOW - timedelta(hours=12))
    vault_id = f"{VAULT_PREFIX}/vault-a"
    topic = _Topic()
    budget = budgeted.settings.watch_time_budget_seconds
    report = watch(budgeted, topic)
    # 15 s at 10 reads a second: the vault list, the job list pages, then about 145 details.
    assert report.deferred and 100 < report.total < 150
    assert len(topic.events) == report.total
    # It stops within the reads in flight when the budget ran out, not a chunk later.
    assert budget <= clock.now() <= budget + watcher.DETAIL_READERS / 10 + 0.5
    checkpoint = watching.storage.checkpoints.get(vault_id)
    ordered = sorted(sim.get_job(vault_id, j)["properties"]["endTime"] for j in jobs)
    assert checkpoint == datetime.fromisoformat(ordered[report.total - 1])
    assert watching.storage.checkpoints.last_run()["Deferred"] is True
    second = watch(budgeted, topic)
    assert not second.deferred and second.total == 250 - report.total
    assert sorted(topic.names) == sorted(jobs)  # every job, each once
    assert watch(budgeted, topic).total == 0


def test_a_budget_spent_before_every_vault_is_done_leaves_them_first_in_line(
    watching: Runtime, sim: AzureSimulator
) -> None:
    clock = SimulatedClock()
    # Three seconds of budget at 10 reads a second: a run does some of the 30 vaults (a list
    # and a detail read each) and stops starting the others.
    budgeted = _paced(watching, clock, watch_time_budget_seconds=3)
    hours_ago = NOW - timedelta(hours=2)
    jobs = [j for v in range(30) for j in _failed_jobs(sim, f"vault-{v:02d}", 1, hours_ago)]
    topic = _Topic()
    runs = []
    while len(topic.events) < len(jobs) and len(runs) < 15:
        runs.append(watch(budgeted, topic))
    assert runs[0].deferred and runs[0].total < 30
    # Vaults left undone go first next time: every run publishes what the last one left,
    # and it takes about as many runs as 30 vaults need at that pace, not more.
    assert all(r.total for r in runs) and len(runs) <= 8
    assert sorted(topic.names) == sorted(jobs)  # each once
    assert all(p["ConsecutiveFailures"] == 0 for p in watching.storage.checkpoints.polls())


def test_the_checkpoint_moves_chunk_by_chunk_so_a_failure_keeps_what_was_published(
    watching: Runtime, sim: AzureSimulator
) -> None:
    jobs = _failed_jobs(sim, "vault-a", 230, NOW - timedelta(hours=12))
    vault_id = f"{VAULT_PREFIX}/vault-a"
    broken = _Topic(fail_from=2)  # the first chunk goes out, the second cannot be published
    report = watch(watching, broken)
    assert vault_id in report.errors and report.published[vault_id] == 100
    ordered = sorted(sim.get_job(vault_id, j)["properties"]["endTime"] for j in jobs)
    assert watching.storage.checkpoints.get(vault_id) == datetime.fromisoformat(ordered[99])
    poll = next(p for p in watching.storage.checkpoints.polls() if p["VaultId"] == vault_id)
    assert poll["ConsecutiveFailures"] == 1
    healed = _Topic()
    assert watch(watching, healed).total == 130
    assert sorted(broken.names + healed.names) == sorted(jobs)  # nothing lost, nothing twice


def test_jobs_that_ended_together_share_a_chunk() -> None:
    at = NOW
    ends = [at + timedelta(seconds=s) for s in (1, 2, 3, 3, 3, 3, 4, 5, 5, 6)]
    jobs = [_Listed(end) for end in ends]
    cut = chunks(jobs, size=3)
    assert [len(c) for c in cut] == [6, 3, 1]  # the 3s stay with the first, the 5s together
    assert [j for c in cut for j in c] == jobs
    for before, after in itertools.pairwise(cut):
        assert before[-1].properties.end_time < after[0].properties.end_time
    assert chunks([], size=3) == []


@dataclasses.dataclass
class _Listed:
    """A job list entry as the watcher reads it (its end time)."""

    end: datetime

    @property
    def properties(self) -> Any:
        return dataclasses.make_dataclass("P", ["end_time", "start_time"])(self.end, self.end)


def _failed_at(sim: AzureSimulator, vault_id: str, start: datetime, end: datetime) -> str:
    """A failed job of the vault's VM that started and ended at those moments (its name)."""
    job = sim.add_job(
        vault_id,
        vm_name="vault-a-vm0",
        vm_resource_group="rg-web",
        error_code=AGENT[0],
        error_string=AGENT[1],
        start_time=start,
        end_time=end,
    )
    return str(job["name"])


def test_a_long_job_that_failed_after_the_checkpoint_is_still_found(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    _failed_jobs(sim, "vault-a", 1, NOW - timedelta(hours=5))
    watch(watching)
    vault_id = f"{VAULT_PREFIX}/vault-a"
    late = _failed_at(sim, vault_id, NOW - timedelta(hours=6), NOW)
    watch(watching)
    assert late in {e["data"]["name"] for e in published(receivers)}


def test_the_look_back_counts_from_the_checkpoint_and_bounds_how_long_a_job_may_run(
    watching: Runtime, sim: AzureSimulator
) -> None:
    """As README says of WATCH_LOOKBACK_HOURS: a job that started more than the look-back
    before the vault's checkpoint and failed after it is not listed; a longer look-back
    finds it."""
    _failed_jobs(sim, "vault-a", 1, NOW - timedelta(hours=5))
    vault_id = f"{VAULT_PREFIX}/vault-a"
    topic = _Topic()
    watch(watching, topic)
    mark = watching.storage.checkpoints.get(vault_id)
    lookback = timedelta(hours=watching.settings.watch_lookback_hours)
    longest = _failed_at(sim, vault_id, mark - lookback - timedelta(hours=1), NOW)
    watch(watching, topic)
    assert longest not in topic.names
    longer = dataclasses.replace(
        watching, settings=dataclasses.replace(watching.settings, watch_lookback_hours=48)
    )
    watch(longer, topic)
    assert longest in topic.names


def test_a_job_that_started_after_the_run_began_and_ended_first_is_not_skipped(
    watching: Runtime, sim: AzureSimulator
) -> None:
    """A quick failure that started after the run began, and ended before a longer job the
    run publishes, is still published: the checkpoint (the longer job's end) never passes
    what the listing covered."""
    _failed_jobs(sim, "vault-a", 1, NOW - timedelta(hours=3))
    vault_id = f"{VAULT_PREFIX}/vault-a"
    run = NOW - timedelta(hours=1)
    longer = _failed_at(sim, vault_id, run - timedelta(minutes=30), run + timedelta(seconds=50))
    quick = _failed_at(sim, vault_id, run + timedelta(seconds=10), run + timedelta(seconds=30))
    topic = _Topic()
    watch(watching, topic, now=run)
    watch(watching, topic)
    assert quick in topic.names and longer in topic.names
    assert len(topic.names) == len(set(topic.names)) == 3


def test_azure_s_clock_ahead_of_ours_delays_a_job_but_never_skips_one(
    watching: Runtime, sim: AzureSimulator
) -> None:
    """Azure stamps jobs later than our clock by more than the margin: a job that ended past
    what the listing asked for waits for the next run, with the quick one that started past it."""
    _failed_jobs(sim, "vault-a", 1, NOW - timedelta(hours=3))
    vault_id = f"{VAULT_PREFIX}/vault-a"
    run = NOW - timedelta(hours=1)
    ahead = run + watcher.CLOCK_SKEW + timedelta(seconds=1)
    longer = _failed_at(sim, vault_id, run - timedelta(minutes=30), ahead + timedelta(seconds=50))
    quick = _failed_at(sim, vault_id, ahead + timedelta(seconds=10), ahead + timedelta(seconds=30))
    topic = _Topic()
    watch(watching, topic, now=run)
    assert longer not in topic.names and quick not in topic.names
    assert watching.storage.checkpoints.get(vault_id) < ahead
    watch(watching, topic, now=run + timedelta(minutes=10))
    assert quick in topic.names and longer in topic.names
    assert len(topic.names) == len(set(topic.names)) == 3


def test_end_to_end_watcher_topic_function_and_alert_make_one_incident(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers, as_app_settings: Any
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    watch(watching)
    as_app_settings(watching.settings)
    deliver_published(receivers)
    deliver_published(receivers)  # Event Grid redelivers
    alert = _alert_for(s)
    answer = handle_alert(watching, alert)
    assert (answer.status, answer.body["status"]) == (200, OutcomeKind.DUPLICATE)
    (incident,) = watching.storage.incidents.query()
    assert incident.JobId == s.job_id
    assert incident.Occurrences == 3
    assert set(incident.Source.split(",")) == {"cloudevent", "alert"}


# -- alerts ----------------------------------------------------------------------------------


def _alert_for(s: Any, condition: str = "Fired") -> dict[str, Any]:
    alert = copy.deepcopy(load_event("alert-backup-failure-fired"))
    alert["data"]["essentials"]["alertTargetIDs"] = [s.vault["id"].lower()]
    alert["data"]["essentials"]["monitorCondition"] = condition
    alert["data"]["alertContext"]["extendedInfo"]["jobId"] = s.job_id
    return alert


def _http(alert: Any) -> func.HttpResponse:
    import function_app

    body = alert if isinstance(alert, bytes) else json.dumps(alert).encode()
    request = func.HttpRequest(
        method="POST",
        url="http://localhost/api/alerts/backup",
        headers={"Content-Type": "application/json"},
        body=body,
    )
    return function_app.on_backup_alert(request)


@pytest.fixture
def alerting(live: Runtime, as_app_settings: Any) -> Runtime:
    return as_app_settings(live.settings)


def test_fired_alert_reads_the_job_and_responds(alerting: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, AGENT)
    response = _http(_alert_for(s))
    assert response.status_code == 200
    assert json.loads(response.get_body())["status"] == OutcomeKind.NEW
    incident = incident_of(alerting, s.job_id)
    assert incident.Source == "alert"
    assert (
        incident.Rule == "vm-agent-snapshot-status-unavailable"
    )  # from the API's error, not the alert text
    assert sim.calls_to(route="job_get")


def test_resolved_alert_is_acknowledged_and_ignored(alerting: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, AGENT)
    response = _http(_alert_for(s, "Resolved"))
    assert response.status_code == 200
    assert json.loads(response.get_body())["status"] == "ignored"
    assert (
        list(alerting.storage.incidents.query()) == []
        and list(alerting.storage.rejections.all()) == []
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (load_event("alert-foreign-metric"), "monitoringService 'Platform' is not Azure Backup"),
        (b"this is not json", "schemaId is not azureMonitorCommonAlertSchema"),
        ({"schemaId": "azureMonitorCommonAlertSchema", "data": {}}, "data.essentials is missing"),
        ([1, 2, 3], "schemaId is not"),
    ],
    ids=["foreign", "not-json", "no-essentials", "array"],
)
def test_other_payloads_get_400_and_are_recorded(
    alerting: Runtime, payload: Any, reason: str
) -> None:
    response = _http(payload)
    assert response.status_code == 400
    assert reason in json.loads(response.get_body())["reason"]
    (row,) = alerting.storage.rejections.all()
    assert reason in row["Reason"] and row["Source"] == "alert"


def test_alert_for_an_unknown_job_is_rejected(alerting: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, AGENT)
    alert = _alert_for(s)
    alert["data"]["alertContext"]["extendedInfo"]["jobId"] = "00000000-0000-4000-8000-000000000000"
    response = _http(alert)
    assert response.status_code == 400
    assert "not found" in json.loads(response.get_body())["reason"]


def test_alert_outside_the_scope_is_rejected(live: Runtime, sim: AzureSimulator) -> None:
    scoped = Runtime.from_settings(
        dataclasses.replace(live.settings, subscription_ids=frozenset({"another"})), FAST_CLIENTS
    )
    s = scene(sim, AGENT)
    answer = handle_alert(scoped, _alert_for(s))
    assert answer.status == 400 and "outside" in answer.body["reason"]
    assert sim.calls_to(route="job_get") == []


# -- VM deleted ------------------------------------------------------------------------------


def _delete_event(
    s: Any, event_id: str = "19a69642-1aad-4a96-a5ab-8d05494513ce"
) -> func.EventGridEvent:
    raw = copy.deepcopy(load_event("resource-delete-vm"))
    raw["id"] = event_id
    raw["subject"] = raw["data"]["resourceUri"] = s.vm_id
    return as_trigger_input(raw)


def test_vm_delete_stops_protection_before_any_backup_fails(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, AGENT)
    sim.delete_vm(s.vm_id)
    (outcome,) = handle_vm_deleted(live, _delete_event(s))
    assert (outcome.kind, outcome.rule, outcome.status) == (
        OutcomeKind.NEW,
        "vm-not-found",
        IncidentStatus.RESOLVED,
    )
    item = sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)
    assert item["properties"]["protectionState"] == "ProtectionStopped"
    incident = incident_of(live, outcome.job_id)
    assert ("stop_protection", "succeeded") in log_of(incident)
    assert ("ticket", "opened") in log_of(incident)
    (again,) = handle_vm_deleted(live, _delete_event(s))  # redelivery: only counted
    assert (again.kind, again.job_id, again.occurrences) == (
        OutcomeKind.DUPLICATE,
        outcome.job_id,
        2,
    )
    assert len(sim.calls_to(route="item_put")) == 1
    assert len(list(live.storage.incidents.query())) == 1


def test_vm_delete_event_for_a_vm_that_still_exists_never_stops(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, AGENT)
    (outcome,) = handle_vm_deleted(live, _delete_event(s))
    assert outcome.status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == []


def test_unprotected_vm_delete_makes_no_incident(live: Runtime, sim: AzureSimulator) -> None:
    vm = sim.add_vm(SUB, "rg-web", "vm-unprotected")
    sim.add_vault(SUB, VAULT_RG, "rsv-empty")
    sim.delete_vm(vm["id"])
    fake = dataclasses.make_dataclass("S", ["vm_id"])(vm["id"])
    assert handle_vm_deleted(live, _delete_event(fake)) == []
    assert list(live.storage.incidents.query()) == []


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda e: e["data"].update(operationName="Microsoft.Storage/storageAccounts/delete"),
            "operationName",
        ),
        (
            lambda e: e.update(eventType="Microsoft.Resources.ResourceWriteSuccess"),
            "is not Microsoft.Resources",
        ),
        (
            lambda e: e["data"].update(resourceUri="/subscriptions/x/resourceGroups/y"),
            "not a virtual machine id",
        ),
    ],
)
def test_other_resource_events_are_rejected(live: Runtime, mutate: Any, reason: str) -> None:
    raw = copy.deepcopy(load_event("resource-delete-vm"))
    mutate(raw)
    event = as_trigger_input(raw)
    (outcome,) = handle_vm_deleted(live, event)
    assert outcome.kind == OutcomeKind.REJECTED and reason in outcome.reason


def test_vm_delete_outside_the_scope_is_rejected(live: Runtime, sim: AzureSimulator) -> None:
    scoped = Runtime.from_settings(
        dataclasses.replace(live.settings, subscription_ids=frozenset({"another"})), FAST_CLIENTS
    )
    s = scene(sim, VM_GONE)
    sim.delete_vm(s.vm_id)
    (outcome,) = handle_vm_deleted(scoped, _delete_event(s))
    assert outcome.kind == OutcomeKind.REJECTED
    assert sim.calls_to(route="item_put") == []


def test_a_large_vault_is_published_in_bounded_batches(
    watching: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    jobs = _failed_jobs(sim, "vault-a", 230, NOW - timedelta(hours=20))
    watch(watching)
    batches = receivers.received("eventgrid")
    assert [len(b.body) for b in batches] == [100, 100, 30]
    assert sorted(e["data"]["name"] for b in batches for e in b.body) == sorted(jobs)
