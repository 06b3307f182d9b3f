"""Acting for real: retries, tickets and stop protection against the simulator and receivers."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from handlers.actions.retry import POISON_AFTER
from handlers.actions.retry_messages import RetryMessage
from handlers.core.incident import IncidentStatus
from handlers.core.outcome import OutcomeKind
from handlers.intake.events import parse
from handlers.intake.retry_queue import run_retry
from handlers.pipeline.runtime import Runtime
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS
from tests.world import (
    AGENT,
    STORAGE_TIMEOUT,
    SUB,
    VM_GONE,
    deliver,
    deliver_concurrently,
    drain,
    incident_of,
    log_of,
    scene,
)


def _runtime(live: Runtime, **overrides) -> Runtime:
    return Runtime.from_settings(dataclasses.replace(live.settings, **overrides), FAST_CLIENTS)


# -- retry -----------------------------------------------------------------------------------


def test_transient_failure_is_retried_and_resolved(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    assert "containerName" not in s.job["properties"]  # as Azure's job details
    sim.auto_complete_backups = "Completed"
    outcome = deliver(live, s.event())
    assert (outcome.rule, outcome.action, outcome.status) == (
        "copy-to-vault-timed-out",
        "retry",
        IncidentStatus.REMEDIATING,
    )
    assert sim.calls_to(route="backup_trigger") == []  # only after the delay
    assert drain(live) == 2  # the retry, then the follow-up
    (trigger,) = sim.calls_to(route="backup_trigger")
    assert trigger.body["properties"]["objectType"] == "IaasVMBackupRequest"
    assert "recoveryPointExpiryTimeInUTC" in trigger.body["properties"]
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.RESOLVED
    assert log_of(incident) == [
        ("retry", "planned"),
        ("retry", "scheduled"),
        ("item", "resolved"),  # Azure's job details name no container: the vault's items do
        ("retry", "started"),
        ("retry", "triggered"),
        ("retry", "succeeded"),
    ]
    assert "in 30 min" in incident.actions[1].detail
    assert incident.actions[2].detail.lower() == f"the job's vm is {s.vm_id.lower()}"
    assert "/protecteditems/" in incident.actions[2].ref.lower()
    assert (incident.VmResourceGroup, incident.VmId.lower()) == (s.vm_group, s.vm_id.lower())
    new_job = incident.actions[-1].ref
    assert sim.get_job(s.vault["id"], new_job)["properties"]["status"] == "Completed"
    texts = [r.body["text"] for r in receivers.received("slack")]
    assert any("retry scheduled" in t for t in texts) and any("succeeded" in t for t in texts)
    assert receivers.violations == []


def test_failed_retries_escalate_to_one_ticket(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    sim.auto_complete_backups = "Failed"
    deliver(live, s.event())
    drain(live)
    assert len(sim.calls_to(route="backup_trigger")) == 2  # the rule allows two attempts
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert ("retry", "exhausted") in log_of(incident)
    assert ("ticket", "opened") in log_of(incident)
    (servicenow,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert s.vm_name in servicenow.body["short_description"]
    assert s.job_id in servicenow.body["description"]
    assert len([r for r in receivers.received("devops") if "/workitems/$" in r.path]) == 1
    assert receivers.violations == []


def test_newer_successful_backup_resolves_without_retrying(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    later = s.add_job(status="Completed", error_code=None)
    deliver(live, s.event())
    drain(live)
    assert sim.calls_to(route="backup_trigger") == []
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.RESOLVED
    assert incident.actions[-1].ref == later["name"]


def test_running_backup_defers_the_retry(live: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    running = s.add_job(status="InProgress", error_code=None)
    deliver(live, s.event())
    (message,) = live.retry_queue.receive(visibility_seconds=30)
    run_retry(live, message.content.decode(), 1, message.id)
    live.retry_queue.delete(message)
    assert sim.calls_to(route="backup_trigger") == []
    incident = incident_of(live, s.job_id)
    assert incident.actions[-1].state == "deferred"
    assert running["name"] in incident.actions[-1].detail
    sim.complete_job(s.vault["id"], running["name"], status="Completed")
    drain(live)
    assert (
        incident_of(live, s.job_id).Status == IncidentStatus.RESOLVED
    )  # the running backup succeeded
    assert sim.calls_to(route="backup_trigger") == []


def test_daily_cap_holds_across_incidents_of_one_item(live: Runtime, sim: AzureSimulator) -> None:
    capped = _runtime(live, retry_daily_cap=1)
    sim.auto_complete_backups = "Failed"
    first = scene(sim, STORAGE_TIMEOUT)
    deliver(capped, first.event())
    drain(capped)
    second = first.repeat(STORAGE_TIMEOUT)
    deliver(capped, second.event())
    drain(capped)
    assert len(sim.calls_to(route="backup_trigger")) == 1
    incident = incident_of(capped, second.job_id)
    assert ("retry", "exhausted") in log_of(incident)
    assert incident.Status == IncidentStatus.ESCALATED


def test_retries_are_staggered_per_vault(live: Runtime, sim: AzureSimulator) -> None:
    staggered = _runtime(live, retry_stagger_limit=2, retry_stagger_minutes=60)
    scenes = [scene(sim, STORAGE_TIMEOUT, vm_name=f"vm-{i}") for i in range(5)]
    for s in scenes:
        deliver(staggered, s.event())
    for message in staggered.retry_queue.receive(max_messages=5, visibility_seconds=30):
        run_retry(staggered, message.content.decode(), 1, message.id)
        staggered.retry_queue.delete(message)
    assert len(sim.calls_to(route="backup_trigger")) == 2
    deferred = [incident_of(staggered, s.job_id).actions[-1] for s in scenes]
    waiting = [a for a in deferred if a.state == "deferred"]
    assert len(waiting) == 3
    assert all("2 retries already started in vault" in a.detail for a in waiting)


def test_poison_message_becomes_a_ticket(live: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    deliver(live, s.event())
    (message,) = live.retry_queue.receive(visibility_seconds=30)
    run_retry(live, message.content.decode(), POISON_AFTER, message.id)
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert ("ticket", "opened") in log_of(incident)
    assert sim.calls_to(route="backup_trigger") == []


def test_throttling_is_honoured_and_the_retry_goes_through(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    sim.auto_complete_backups = "Completed"
    sim.faults.add("backup_trigger", "429", times=2, retry_after=1)
    deliver(live, s.event())
    drain(live)
    triggers = sim.calls_to(route="backup_trigger")
    assert [c.status for c in triggers] == [429, 429, 202]
    assert incident_of(live, s.job_id).Status == IncidentStatus.RESOLVED


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_persistent_api_fault_is_recorded_then_escalated(
    live: Runtime, sim: AzureSimulator, kind: str
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    deliver(live, s.event())
    sim.faults.add("job_get", kind, times=100)
    (message,) = live.retry_queue.receive(visibility_seconds=30)
    body = message.content.decode()
    for dequeue in range(1, POISON_AFTER):
        with pytest.raises(Exception, match="unavailable"):
            run_retry(live, body, dequeue, message.id)
    run_retry(live, body, POISON_AFTER, message.id)
    incident = incident_of(live, s.job_id)
    failures = [a for a in incident.actions if a.action == "retry" and a.state == "failed"]
    assert len(failures) == POISON_AFTER
    assert incident.Status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="backup_trigger") == []


def test_denied_trigger_becomes_a_ticket(live: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    sim.faults.add("backup_trigger", "403", times=1)
    deliver(live, s.event())
    drain(live)
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert any("denied by authorization" in a.detail for a in incident.actions)


def test_retry_for_a_vm_that_vanished_stops_protection(live: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    deliver(live, s.event())
    sim.delete_vm(s.vm_id)
    drain(live)
    assert (
        sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)["properties"][
            "protectionState"
        ]
        == "ProtectionStopped"
    )
    assert sim.calls_to(route="backup_trigger") == []


# -- stop protection -------------------------------------------------------------------------


def test_deleted_vm_stops_protection_and_keeps_the_data(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = scene(sim, VM_GONE)
    assert "containerName" not in s.job["properties"]  # as Azure's job details
    sim.delete_vm(s.vm_id)
    outcome = deliver(live, s.event())
    assert (outcome.action, outcome.status) == ("stop_protection", IncidentStatus.RESOLVED)
    (put,) = sim.calls_to(route="item_put")
    assert put.body["properties"]["protectionState"] == "ProtectionStopped"
    assert put.body["properties"]["protectedItemType"] == "Microsoft.Compute/virtualMachines"
    assert put.body["properties"]["sourceResourceId"].lower() == s.vm_id.lower()
    assert (
        sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)["properties"][
            "protectionState"
        ]
        == "ProtectionStopped"
    )
    assert [c.route for c in sim.calls if c.method == "GET"][:3] == [
        "job_get",  # the job still failed
        "item_list",  # which item (the job names no container), and so which VM
        "vm_get",  # ARM says 404
    ]  # verified first
    incident = incident_of(live, s.job_id)
    assert ("stop_protection", "succeeded") in log_of(incident)
    assert ("ticket", "opened") in log_of(incident)
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert "recovery point is retained" in ticket.body["description"]
    assert any("protection stopped" in r.body["text"].lower() for r in receivers.received("slack"))


def test_vm_that_exists_is_never_stopped(live: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, AGENT)
    outcome = deliver(live, s.event(code=400094, message="The virtual machine doesn't exist"))
    assert outcome.action == "stop_protection"  # what the payload claims...
    assert sim.calls_to(route="item_put") == []  # ...is not what ARM says
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert any("still has the VM" in a.detail for a in incident.actions)
    assert (
        sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)["properties"][
            "protectionState"
        ]
        == "Protected"
    )


def test_moved_vm_is_not_stopped(live: Runtime, sim: AzureSimulator) -> None:
    s = scene(sim, VM_GONE)
    sim.move_vm(s.vm_id, "rg-elsewhere")
    deliver(live, s.event())
    assert sim.calls_to(route="item_put") == []
    assert any("moved?" in a.detail for a in incident_of(live, s.job_id).actions)


@pytest.mark.parametrize("kind", ["403", "mua_403"])
def test_denied_stop_becomes_a_ticket(live: Runtime, sim: AzureSimulator, kind: str) -> None:
    s = scene(sim, VM_GONE)
    sim.delete_vm(s.vm_id)
    sim.faults.add("item_put", kind, times=1)
    outcome = deliver(live, s.event())
    assert outcome.status == IncidentStatus.ESCALATED
    incident = incident_of(live, s.job_id)
    assert any("Multi-User Authorization" in a.detail for a in incident.actions)
    assert (
        sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)["properties"][
            "protectionState"
        ]
        == "Protected"
    )


# -- tickets ---------------------------------------------------------------------------------


def test_ticket_goes_to_every_sink_and_repeats_append(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    first = scene(sim, AGENT)
    assert deliver(live, first.event()).status == IncidentStatus.ESCALATED
    repeat = first.repeat(AGENT)
    deliver(live, repeat.event())
    tickets = live.tickets.tickets()
    assert len(tickets) == 1
    assert tickets[0]["Occurrences"] == 2
    assert json.loads(tickets[0]["Incidents"]) == [first.job_id, repeat.job_id]
    refs = json.loads(tickets[0]["Refs"])
    assert set(refs) == {"webhook", "servicenow", "azure-devops"}
    sn = receivers.received("servicenow")
    assert [r.method for r in sn] == ["POST", "PATCH"]
    assert sn[1].path.endswith(refs["servicenow"])
    assert repeat.job_id in sn[1].body["work_notes"]
    devops = receivers.received("devops")
    assert devops[1].path.split("?")[0].endswith(f"/workItems/{refs['azure-devops']}/comments")
    hooks = [r.body["event"] for r in receivers.received("webhook") if "ticket" in r.body]
    assert hooks == ["ticket.opened", "ticket.updated"]
    assert receivers.violations == []


def test_ticket_language_japanese(live: Runtime, sim: AzureSimulator, receivers: Receivers) -> None:
    ja = _runtime(live, ticket_language="ja")
    s = scene(sim, AGENT)
    deliver(ja, s.event())
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert any("\u3040" <= ch <= "\u30ff" for ch in ticket.body["description"])


def test_event_text_is_escaped_for_each_sink(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    hostile = "<script>alert(1)</script> [code]<b>x</b>[/code] *bold* & <@U123>"
    s = scene(sim, (999777, hostile))
    deliver(live, s.event())
    (work_item,) = [r for r in receivers.received("devops") if "/workitems/$" in r.path]
    description = next(
        op["value"] for op in work_item.body if op["path"] == "/fields/System.Description"
    )
    assert "<script>" not in description and "&lt;script&gt;" in description
    (incident,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert "[code]" not in incident.body["description"].lower()
    slack = [r.body for r in receivers.received("slack")]
    assert all("<script>" not in json.dumps(b) and "<@U123>" not in json.dumps(b) for b in slack)
    teams = json.dumps([r.body for r in receivers.received("teams")])
    assert "*bold*" not in teams


def test_a_failing_sink_or_channel_never_blocks_the_action(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    receivers.fail("servicenow", 500)
    receivers.fail("teams", 500)
    s = scene(sim, AGENT)
    outcome = deliver(live, s.event())
    assert outcome.status == IncidentStatus.ESCALATED
    incident = incident_of(live, s.job_id)
    failed = [a for a in incident.actions if a.state == "failed"]
    assert {a.action for a in failed} == {"ticket", "notify"}
    assert "servicenow: HTTP 500" in [a.detail for a in failed]
    assert receivers.url("servicenow") not in json.dumps([a.detail for a in failed])  # no URL leaks
    assert json.loads(live.tickets.tickets()[0]["Refs"]).keys() == {"webhook", "azure-devops"}


def test_notify_filter_keeps_quiet_nights_quiet(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    quiet = _runtime(live, notify_filter="outcome=protection_stopped")
    s = scene(sim, AGENT)
    deliver(quiet, s.event())
    assert receivers.received("slack") == [] and receivers.received("teams") == []
    assert list(receivers.received("servicenow"))  # the ticket itself still went out


# -- exactly once under concurrency, and dry run --------------------------------------------


@pytest.mark.parametrize(
    "error", [STORAGE_TIMEOUT, VM_GONE, AGENT], ids=["retry", "stop", "ticket"]
)
def test_triple_concurrent_delivery_acts_once(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, error
) -> None:
    s = scene(sim, error)
    if error == VM_GONE:
        sim.delete_vm(s.vm_id)
    sim.auto_complete_backups = "Completed"
    kinds = deliver_concurrently(live, parse(s.event()), 3)
    drain(live)
    assert sorted(kinds) == [OutcomeKind.DUPLICATE, OutcomeKind.DUPLICATE, OutcomeKind.NEW]
    assert len(sim.calls_to(route="backup_trigger")) == (1 if error == STORAGE_TIMEOUT else 0)
    assert len(sim.calls_to(route="item_put")) == (1 if error == VM_GONE else 0)
    tickets = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert len(tickets) == (0 if error == STORAGE_TIMEOUT else 1)


def test_dry_run_changes_nothing_in_azure(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    dry = _runtime(live, dry_run=True)
    for error in (STORAGE_TIMEOUT, VM_GONE, AGENT):
        s = scene(sim, error, vm_name=f"vm-{error[0]}")
        if error == VM_GONE:
            sim.delete_vm(s.vm_id)
        deliver(dry, s.event())
    drain(dry)
    assert [c for c in sim.calls if c.method != "GET"] == []
    assert receivers.received() == []
    assert all(i.DryRun and i.Status == "open" for i in dry.storage.incidents.query())


def test_retry_message_round_trips() -> None:
    message = RetryMessage("follow_up", "pk", "rk", 2, "op", "job", 3)
    assert RetryMessage.from_json(message.to_json()) == message


@pytest.mark.parametrize("error", [STORAGE_TIMEOUT, VM_GONE], ids=["retry", "stop"])
def test_a_failure_the_backup_api_does_not_confirm_is_rejected(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, error
) -> None:
    base = scene(sim, error)
    done = base.add_job(status="Completed", error_code=None)  # what the API says...
    s = dataclasses.replace(base, job=sim.get_job(base.vault["id"], done["name"]))
    event = s.event(code=error[0], message=error[1])
    event["data"]["properties"]["status"] = "Failed"  # ...and what a stale or forged event says
    if error == VM_GONE:
        sim.delete_vm(s.vm_id)
    deliver(live, event)
    drain(live)
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.REJECTED
    assert "not Failed" in incident.actions[-1].detail
    assert [c for c in sim.calls if c.method != "GET"] == []
    assert receivers.received("servicenow") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json at all", "retry message unusable: not JSON"),
        ("{}", "retry message unusable: kind is missing"),
        ('{"kind": "retry", "pk": "a"}', "retry message unusable: rk is missing"),
        ('{"kind": "poke", "pk": "a", "rk": "b", "attempt": 1}', "unknown kind 'poke'"),
        ('{"kind": "retry", "pk": "a", "rk": "b", "attempt": "1"}', "attempt must be"),
        ('{"kind": "retry", "pk": "nope", "rk": "none", "attempt": 1}', "does not exist"),
    ],
)
def test_an_unusable_retry_message_is_kept_and_dropped_never_escalated(
    live: Runtime, body: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_retry(live, body, 1, "q-1")  # returns: the host deletes it, nothing raises
    (row,) = live.storage.rejections.all()
    assert reason in row["Reason"] and row["Source"] == "retry-queue"
    assert any(reason in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert live.tickets.tickets() == []


def test_a_retry_message_from_another_version_keeps_working(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    sim.auto_complete_backups = "Completed"
    deliver(live, s.event())
    (message,) = live.retry_queue.receive(visibility_seconds=30)
    newer = {**json.loads(message.content.decode()), "priority": "high"}  # an unknown field
    run_retry(live, json.dumps(newer), 1, message.id)
    assert ("retry", "triggered") in log_of(incident_of(live, s.job_id))


# -- jobs that name no container (Azure's job details need not) ------------------------------


def test_two_protected_vms_of_one_name_make_a_ticket_that_names_both_never_a_guess(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    s = scene(sim, VM_GONE, vm_group="rg-a")
    twin = sim.add_vm(SUB, "rg-b", s.vm_name)
    sim.protect_vm(s.vault["id"], twin["id"])
    sim.delete_vm(s.vm_id)
    outcome = deliver(live, s.event())
    assert outcome.status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == [] and sim.calls_to(route="backup_trigger") == []
    incident = incident_of(live, s.job_id)
    (skipped,) = [a for a in incident.actions if a.state == "skipped"]
    assert "2 protected VM item(s)" in skipped.detail
    (ticket,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    for vm_id in (s.vm_id, twin["id"]):
        assert vm_id.lower() in ticket.body["description"].lower()


def test_another_groups_vm_of_the_same_name_is_never_taken_for_this_one(
    live: Runtime, sim: AzureSimulator
) -> None:
    """A newer successful backup of a same-named VM elsewhere must not resolve this incident:
    its jobs list under the same name, and only their details (the container) tell them apart."""
    s = scene(sim, STORAGE_TIMEOUT, vm_group="rg-a", container_in_details=True)
    twin = sim.add_vm(SUB, "rg-b", s.vm_name)
    sim.protect_vm(s.vault["id"], twin["id"])
    sim.add_job(
        s.vault["id"],
        vm_name=s.vm_name,
        vm_resource_group="rg-b",
        status="Completed",
        start_time=datetime.now(UTC) - timedelta(minutes=30),
    )  # its list entry and details name no container: only the name matches
    sim.auto_complete_backups = "Completed"
    deliver(live, s.event())
    drain(live)
    incident = incident_of(live, s.job_id)
    assert not any("newer backup succeeded" in a.detail for a in incident.actions)
    (trigger,) = sim.calls_to(route="backup_trigger")
    assert "rg-a" in trigger.path.lower()
    assert incident.Status == IncidentStatus.RESOLVED  # by this VM's own retried backup
