"""Crash consistency: an instance killed (SIGKILL) at a named point inside an action, then the
platform's redelivery in another process: no ticket lost, no second backup, no incident
stranded (issue #10). Each child is a separate Python process, as separate Function App
instances are; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.actions.approval import sweep
from handlers.azure.backup import VaultApi
from handlers.core.ids import VaultRef
from handlers.core.incident import IncidentStatus
from handlers.core.outcome import OutcomeKind
from handlers.intake.retry_queue import run_retry
from handlers.intake.vm_deleted import handle_vm_deleted
from handlers.pipeline.runtime import Runtime
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import (
    AGENT,
    STORAGE_TIMEOUT,
    VM_GONE,
    as_trigger_input,
    deliver,
    incident_of,
    log_of,
    scene,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def platform(live: Runtime) -> Runtime:
    """The instance that redelivers: a claim left by a dead instance is taken over at once."""
    return Runtime.from_settings(
        dataclasses.replace(live.settings, claim_lease_seconds=0), FAST_CLIENTS
    )


def _killed_at(point: str, runtime: Runtime, **job: Any) -> None:
    """Run ``job`` in a child instance that SIGKILLs itself right after ``point``."""
    settings = {
        f.name: sorted(v) if isinstance(v := getattr(runtime.settings, f.name), frozenset) else v
        for f in dataclasses.fields(runtime.settings)
    }
    child = subprocess.run(
        [sys.executable, "-m", "tests.crash_child", point],
        input=json.dumps({"settings": settings, **job}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]


# -- tickets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("point", ["servicenow-open", "devops-open"])
def test_a_ticket_opened_in_a_sink_before_a_crash_is_completed_not_repeated(
    platform: Runtime, sim: AzureSimulator, receivers: Receivers, point: str
) -> None:
    s = scene(sim, AGENT)
    _killed_at(point, platform, call="respond", event=s.event())
    assert deliver(platform, s.event()).status == IncidentStatus.ESCALATED
    for service in ("servicenow", "devops"):
        assert len(receivers.tickets(service)) == 1, service  # exactly one, in every sink
    (row,) = platform.tickets.tickets()
    refs = json.loads(row["Refs"])
    assert set(refs) == {"webhook", "servicenow", "azure-devops"}
    assert json.loads(row["Opening"]) == {}
    incident = incident_of(platform, s.job_id)
    assert ("ticket", "opened") in log_of(incident)
    assert ("ticket", "appended") not in log_of(incident)
    assert {a.detail for a in incident.actions if a.state == "sent"} == set(refs)
    assert receivers.violations == []


def test_concurrent_jobs_of_one_item_put_every_note_in_every_sink(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    """Two different failed jobs of the same VM and rule at once, from separate instances
    (processes): the second waits for the first's refs; its note reaches every sink."""
    first = scene(sim, AGENT)
    second = first.repeat(AGENT)
    jobs = [
        subprocess.Popen(
            [sys.executable, "-c", _DELIVER],
            stdin=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        for _ in (first, second)
    ]
    settings = {
        f.name: sorted(v) if isinstance(v := getattr(live.settings, f.name), frozenset) else v
        for f in dataclasses.fields(live.settings)
    }
    for job, s in zip(jobs, (first, second), strict=True):
        job.communicate(json.dumps({"settings": settings, "event": s.event()}), timeout=120)
        assert job.returncode == 0
    (row,) = live.tickets.tickets()
    assert row["Occurrences"] == 2
    notes = [r for r in receivers.received("servicenow") if r.method == "PATCH"]
    comments = [
        r
        for r in receivers.received("devops")
        if r.path.endswith("/comments?api-version=7.1-preview.4")
    ]
    updates = [r for r in receivers.received("webhook") if r.body.get("event") == "ticket.updated"]
    assert len(notes) == len(comments) == len(updates) == 1


_DELIVER = """
import json, sys
from handlers.intake.events import parse
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from tests.conftest import FAST_CLIENTS
from tests.crash_child import settings_of
job = json.load(sys.stdin)
respond(Runtime.from_settings(settings_of(job["settings"]), FAST_CLIENTS), parse(job["event"]))
"""


# -- retries ---------------------------------------------------------------------------------


def _first_message(runtime: Runtime) -> Any:
    (message,) = runtime.retry_queue.receive(visibility_seconds=1)
    return message


def test_a_backup_started_before_a_crash_is_found_not_started_again(
    platform: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    deliver(platform, s.event())
    message = _first_message(platform)
    body = message.content.decode()
    _killed_at(
        "backup-trigger",
        platform,
        call="run_retry",
        body=body,
        dequeue_count=1,
        message_id=message.id,
    )
    assert [c.status for c in sim.calls_to(route="backup_trigger")] == [202]
    since = datetime.now(UTC) - timedelta(hours=1)
    vault = VaultApi(platform.clients, VaultRef.parse(s.vault["id"]))
    (ours,) = vault.jobs("operation eq 'Backup'", since, since + timedelta(hours=2))
    sim.complete_job(s.vault["id"], ours.name, status="Failed")  # it fails meanwhile
    run_retry(platform, body, 2, message.id)  # the queue redelivers the same message
    assert len(sim.calls_to(route="backup_trigger")) == 1, "no second backup for attempt 1"
    incident = incident_of(platform, s.job_id)
    assert ("retry", "failed") in log_of(incident)  # the failed first backup is on record
    assert log_of(incident).count(("retry", "started")) == 1
    assert sorted(platform.storage.counters.counts()) == [1, 1]  # daily and stagger, once each
    assert any(a.state == "scheduled" and a.attempt == 2 for a in incident.actions)


def test_a_retry_message_sent_twice_starts_one_backup(
    platform: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    event = s.event()
    _killed_at("retry-enqueue", platform, call="respond", event=event)  # queued, not logged
    deliver(platform, event)  # the redelivery queues attempt 1 again (the same identity)
    copies = platform.retry_queue.receive(visibility_seconds=1)
    assert len(copies) == 2
    assert {json.loads(m.content.decode())["seq"] for m in copies} == {0}
    for copy_ in copies:  # two instances, each with one copy
        run_retry(platform, copy_.content.decode(), 1, copy_.id)
    assert len(sim.calls_to(route="backup_trigger")) == 1
    incident = incident_of(platform, s.job_id)
    assert ("retry", "skipped") in log_of(incident)  # the second copy, said and dropped


# -- stop protection -------------------------------------------------------------------------


def test_a_vm_deleted_incident_killed_mid_stop_is_completed_by_the_redelivery(
    platform: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = scene(sim, AGENT)
    sim.delete_vm(s.vm_id)
    raw = json.loads(json.dumps(load_event("resource-delete-vm")))
    raw["subject"] = raw["data"]["resourceUri"] = s.vm_id
    _killed_at("protection-put", platform, call="vm_deleted", event=raw)
    item = sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)
    assert item["properties"]["protectionState"] == "ProtectionStopped"  # the PUT went through
    (outcome,) = handle_vm_deleted(platform, as_trigger_input(raw))
    assert outcome.kind == OutcomeKind.RESUMED
    incident = incident_of(platform, outcome.job_id)
    assert incident.Status == IncidentStatus.RESOLVED
    assert ("stop_protection", "succeeded") in log_of(incident)
    assert ("ticket", "opened") in log_of(incident)  # the owner is told
    assert platform.storage.claims.states()[outcome.job_id] == "done"
    assert len(sim.calls_to(route="item_put")) == 1


def test_an_approved_stop_killed_right_after_its_put_is_finished_by_the_timer(
    platform: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    approving = Runtime.from_settings(
        dataclasses.replace(
            platform.settings,
            approval_required=True,
            approval_secret="crash-test-approval-secret-0123456789",
            approval_base_url="https://responder.example.net",
        ),
        FAST_CLIENTS,
    )
    s = scene(sim, VM_GONE)
    sim.delete_vm(s.vm_id)
    assert deliver(approving, s.event()).status == IncidentStatus.AWAITING_APPROVAL
    _killed_at("protection-put", approving, call="approve", incident=s.job_id)
    item = sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)
    assert item["properties"]["protectionState"] == "ProtectionStopped"  # the PUT went through
    approval = incident_of(approving, s.job_id).approval
    assert approval is not None and approval.state == "approved" and not approval.done
    decided = datetime.fromisoformat(approval.decided_at)
    assert sweep(approving, decided, timedelta(0)) == 1  # the timer's next run
    incident = incident_of(approving, s.job_id)
    assert incident.Status == IncidentStatus.RESOLVED
    assert ("stop_protection", "succeeded") in log_of(incident)  # the owner is told
    assert len(sim.calls_to(route="item_put")) == 1
    assert approving.storage.approvals.open(10) == []
