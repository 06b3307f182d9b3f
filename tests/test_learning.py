"""Decisions that learn from outcomes (issue #12 item 5), against Azurite, the simulator and the
ticket receivers, on the runtime's clock (each night's responder runs at that night's time):

- retries withheld after they did not help on K of the last N nights, with the evidence (which
  nights, which jobs) and the remediation in the ticket; checked again when the message runs;
- a ``CloudDos…`` daily limit defers the retry to the next UTC day without spending an attempt:
  a failure that is the limit, a trigger Azure refuses for it, a retry's job that ends with it;
- a failure that comes back after its ticket was resolved reopens the ticket in every sink.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from handlers.actions.desk import TicketResult
from handlers.actions.retry import MAX_THROTTLED_DAYS
from handlers.actions.retry_limits import day_key, next_day
from handlers.actions.retry_messages import MessageKind, RetryMessage
from handlers.core.history import night_of, retry_history
from handlers.core.incident import ActionEntry, Incident, IncidentStatus
from handlers.core.model import Workload
from handlers.intake.retry_queue import run_retry
from handlers.pipeline.runtime import Runtime
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS
from tests.world import (
    AGENT,
    STORAGE_TIMEOUT,
    Scene,
    deliver,
    drain,
    incident_of,
    log_of,
    scene,
    workload_scene,
)

DAILY_LIMIT = {
    "error_title": "CloudDosAbsoluteLimitReached",
    "error_string": (
        "Operation is blocked as you have reached the limit on number of operations permitted "
        "in 24 hours."
    ),
}
CONFLICT = {
    "error_code": 510008,
    "error_title": "OperationCancelledBecauseConflictingOperationRunningUserError",
    "error_string": "Operation cancelled as a conflicting operation was already running.",
}


def _at(runtime: Runtime, moment: datetime) -> Runtime:
    """The runtime with its clock stopped at ``moment``."""
    return dataclasses.replace(runtime, clock=lambda: moment)


def _with(runtime: Runtime, **settings: Any) -> Runtime:
    return Runtime.from_settings(dataclasses.replace(runtime.settings, **settings), FAST_CLIENTS)


def _night(nights_ago: int) -> datetime:
    """22:00 UTC on the evening ``nights_ago`` nights before tonight."""
    evening = datetime.now(UTC).date() - timedelta(days=nights_ago)
    return datetime.combine(evening, time(22), tzinfo=UTC)


def _again(s: Scene, nights_ago: int, error: tuple[int, str] = STORAGE_TIMEOUT) -> Scene:
    """The same VM failing the same way ``nights_ago`` nights before tonight."""
    start = _night(nights_ago)
    return s.repeat(error, start_time=start, end_time=start + timedelta(minutes=30))


def _on_night(runtime: Runtime, s: Scene, nights_ago: int) -> str:
    """The responder on that night: it records the failure an hour after the job started and
    runs every retry message (Azure's clock says the same time); returns the incident's status
    after them."""
    moment = _night(nights_ago) + timedelta(hours=1)
    that_night = _at(runtime, moment)
    s.sim.clock = lambda: moment
    deliver(that_night, s.event())
    drain(that_night)
    return incident_of(runtime, s.job_id).Status


def _triggers(sim: AzureSimulator) -> list[int]:
    return [c.status for c in sim.calls_to(route="backup_trigger")]


def _take(runtime: Runtime) -> tuple[RetryMessage, Any]:
    (raw,) = runtime.retry_queue.receive(max_messages=32, visibility_seconds=60)
    return RetryMessage.from_json(raw.content.decode()), raw


def _run(runtime: Runtime, raw: Any) -> None:
    run_retry(runtime, raw.content.decode(), 1, raw.id)
    runtime.retry_queue.delete(raw)


def _sent_notes(receivers: Receivers) -> dict[str, list[str]]:
    """What each ticket sink was told after opening: work notes, comments, webhook notes."""
    return {
        "servicenow": [
            r.body["work_notes"]
            for r in receivers.received("servicenow")
            if r.method == "PATCH" and "work_notes" in r.body
        ],
        "devops": [r.body["text"] for r in receivers.received("devops") if "/comments" in r.path],
        "webhook": [
            r.body["note"]
            for r in receivers.received("webhook")
            if r.body.get("event") in ("ticket.updated", "ticket.reopened")
        ],
    }


# -- retries withheld when they have not helped ----------------------------------------------


@pytest.mark.parametrize("failed_nights", [3, 0], ids=["learning", "switched-off"])
def test_retries_that_did_not_help_on_3_of_the_last_4_nights_are_withheld_with_the_evidence(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, failed_nights: int
) -> None:
    learning = _with(live, retry_learn_failed_nights=failed_nights, retry_learn_window_nights=4)
    sim.auto_complete_backups = "Failed"
    first = scene(sim, STORAGE_TIMEOUT, started=_night(4))
    earlier = [first, _again(first, 3), _again(first, 2)]
    for s, nights_ago in zip(earlier, (4, 3, 2), strict=True):
        assert _on_night(learning, s, nights_ago) == IncidentStatus.ESCALATED
    assert len(_triggers(sim)) == 6  # two attempts a night, every one failed
    tonight = _again(first, 1)

    outcome = deliver(_at(learning, _night(1) + timedelta(hours=1)), tonight.event())

    incident = incident_of(learning, tonight.job_id)
    if not failed_nights:  # switched off: the retry is scheduled as before
        assert outcome.status == IncidentStatus.REMEDIATING
        assert ("retry", "scheduled") in log_of(incident)
        return
    assert outcome.status == IncidentStatus.ESCALATED
    assert len(_triggers(sim)) == 6 and learning.retry_queue.receive() == []
    steps = log_of(incident)
    assert steps[:2] == [("retry", "planned"), ("retry", "withheld")]
    assert ("ticket", "appended") in steps  # the item and rule's open ticket
    (withheld,) = [a for a in incident.actions if a.state == "withheld"]
    nights = [(_night(n) - timedelta(hours=22)).date().isoformat() for n in (2, 3, 4)]
    assert withheld.detail.startswith("retries have not helped on 3 of the last 4 nights: ")
    for night, s in zip(nights, reversed(earlier), strict=True):  # newest first
        assert f"{night}: job {s.job_id} retry failed" in withheld.detail
    notes = _sent_notes(receivers)
    for sink in ("servicenow", "devops", "webhook"):
        note = notes[sink][-1]
        assert "Automatic retry withheld: retries have not helped on 3 of the last 4 nights" in note
        assert all(s.job_id in note for s in earlier)
        assert "1. Check Azure Service Health" in note  # the rule's remediation, its steps
    assert receivers.violations == []


def test_the_history_is_read_again_when_the_retry_message_runs(
    live: Runtime, sim: AzureSimulator
) -> None:
    """Last night's retries had not finished when tonight's retry was planned; by the time
    tonight's message runs they have failed, and it is withheld then."""
    learning = _with(live, retry_learn_failed_nights=2, retry_learn_window_nights=2)
    sim.auto_complete_backups = "Failed"
    first = scene(sim, STORAGE_TIMEOUT, started=_night(3))
    assert _on_night(learning, first, 3) == IncidentStatus.ESCALATED
    last_night, tonight = _again(first, 2), _again(first, 1)
    deliver(_at(learning, _night(2) + timedelta(hours=1)), last_night.event())  # not run yet
    later = _at(learning, _night(1) + timedelta(hours=1))
    assert deliver(later, tonight.event()).status == IncidentStatus.REMEDIATING  # 1 of 2 nights
    waiting = []
    last_rk = incident_of(learning, last_night.job_id).RowKey
    sim.clock = lambda: _night(2) + timedelta(hours=1)
    for _ in range(10):  # last night's retries run to the end; tonight's message waits
        messages = list(learning.retry_queue.receive(max_messages=32, visibility_seconds=60))
        mine = [m for m in messages if RetryMessage.from_json(m.content.decode()).rk == last_rk]
        waiting += [m for m in messages if m not in mine]
        for raw in mine:
            _run(_at(learning, _night(2) + timedelta(hours=1)), raw)
    assert incident_of(learning, last_night.job_id).Status == IncidentStatus.ESCALATED
    triggers = len(_triggers(sim))

    (message,) = waiting
    _run(later, message)

    incident = incident_of(learning, tonight.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    assert [a.state for a in incident.actions if a.action == "retry"][-1] == "withheld"
    assert "retries have not helped on 2 of the last 2 nights" in incident.actions[-1].detail
    assert len(_triggers(sim)) == triggers  # no backup for tonight


#: A retry log step: the backup the retry started ended failed (the log names its job).
BACKUP_FAILED = "failed, its backup job named"


def _incident(job: str, failed: datetime, status: str, *steps: str) -> Incident:
    """A retry incident of one item and rule whose retry log ends in ``steps``."""
    log = [
        dataclasses.asdict(
            ActionEntry(failed.isoformat(), "retry", "failed", ref=f"{job}-retry")
            if step == BACKUP_FAILED
            else ActionEntry(failed.isoformat(), "retry", step)
        )
        for step in steps
    ]
    return Incident(
        PartitionKey="vm-1", RowKey=job, IncidentId=job, JobId=job, JobResourceId="",
        SubscriptionId="", VaultName="rsv", VaultId="", VmName="vm-1", VmResourceGroup="",
        VmId="", ProtectedItem="", Operation="Backup", ErrorCodes="", ErrorMessage="",
        Rule="copy-to-vault-timed-out", RuleTitle="", Category="transient", MatchedBy="code",
        PlannedAction="retry", Remediation="", RemediationJa="", Doc="", DryRun=False,
        Status=status, Source="test", FirstSeen=failed, LastSeen=failed, JobEndTime=failed,
        ActionLog=json.dumps(log),
    )  # fmt: skip


def test_what_counts_as_a_night_on_which_retries_did_not_help() -> None:
    tonight = date(2026, 12, 7)

    def at(night: date, hour: int = 23) -> datetime:
        return datetime.combine(night, time(hour), tzinfo=UTC)

    escalated, resolved = IncidentStatus.ESCALATED, IncidentStatus.RESOLVED
    earlier = [
        _incident("a", at(date(2026, 12, 6), 2), escalated, BACKUP_FAILED, "exhausted"),  # 5th
        _incident("b", at(date(2026, 12, 6)), escalated, BACKUP_FAILED, "exhausted"),
        _incident("c", at(tonight, 3), resolved, "planned", "succeeded"),  # helped
        _incident("d", at(date(2026, 12, 4)), escalated, "planned", "withheld"),
        _incident("e", at(date(2026, 12, 3)), IncidentStatus.REMEDIATING, "scheduled"),
        _incident("i", at(date(2026, 12, 3), 22), escalated, "planned", "failed"),  # denied
        _incident("j", at(date(2026, 12, 3), 21), escalated, "planned", "exhausted"),  # cap
        _incident("f", at(date(2026, 12, 2)), escalated, "planned", BACKUP_FAILED),
        _incident("g", at(date(2026, 12, 1)), escalated, BACKUP_FAILED, "exhausted"),  # too old
        _incident("h", at(tonight), escalated, BACKUP_FAILED, "exhausted"),  # tonight itself
    ]
    history = retry_history(earlier, tonight, 5)

    assert [(n.night.isoformat(), n.helped) for n in history.nights] == [
        ("2026-12-06", True),  # 23:00 on the 6th and 03:00 on the 7th: one night, one helped
        ("2026-12-05", False),  # 02:00 on the 6th belongs to the night of the 5th
        ("2026-12-04", False),  # withheld and failed again: still not helped
        ("2026-12-02", False),  # the 3rd: pending, or given up before any backup ran: no
    ]  # evidence either way
    assert history.summary().startswith("retries have not helped on 3 of the last 5 nights: ")
    assert "2026-12-05: job a retry failed" in history.summary()
    assert night_of(at(date(2026, 12, 6), 11)) == date(2026, 12, 5)


# -- Azure's daily limit: the next UTC day, no attempt spent ----------------------------------


def _item_count(runtime: Runtime, incident: Incident, moment: datetime) -> int:
    return runtime.storage.counters.count(f"item|{incident.item_key}", day_key(moment))


def test_a_daily_limit_failure_is_retried_on_the_next_utc_day_spending_no_attempt_today(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.SQL, **DAILY_LIMIT)
    sim.auto_complete_backups = "Completed"
    now = datetime.now(UTC)
    today = _at(live, now)
    outcome = deliver(today, s.event())
    assert (outcome.rule, outcome.action) == ("workload-daily-operation-limit", "retry")
    message, raw = _take(today)
    tomorrow = day_key(now + timedelta(days=1))
    assert message.day == tomorrow  # the rule's 24 hours, and never before the next UTC day
    incident = incident_of(today, s.job_id)
    assert "not before" in incident.actions[-1].detail
    _run(today, raw)  # early (the sandbox's queue has no delays): it waits for its day again
    again, raw = _take(today)
    assert (again.day, again.seq, again.attempt) == (tomorrow, message.seq + 1, 1)
    assert _triggers(sim) == [] and today.storage.counters.counts() == []

    next_utc_day = _at(live, next_day(now) + timedelta(minutes=1))
    _run(next_utc_day, raw)
    drain(next_utc_day)

    incident = incident_of(today, s.job_id)
    assert _triggers(sim) == [202] and incident.Status == IncidentStatus.RESOLVED
    (triggered,) = [a for a in incident.actions if a.state == "triggered"]
    assert triggered.attempt == 1
    assert _item_count(today, incident, now) == 0  # nothing of today's
    assert _item_count(today, incident, next_day(now)) == 1  # one of tomorrow's


def test_a_message_early_twice_for_its_day_waits_the_whole_time_even_in_the_sandbox(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.SQL, **DAILY_LIMIT)
    today = _at(live, datetime.now(UTC))
    assert today.settings.queue_delay_scale == 0  # delays are cut short here
    deliver(today, s.event())
    for _ in range(2):
        _run(today, _take(today)[1])
    assert today.retry_queue.receive() == []  # not spinning: it waits for the next UTC day
    incident = incident_of(today, s.job_id)
    assert [a.state for a in incident.actions if a.action == "retry"][-2:] == ["deferred"] * 2
    assert _triggers(sim) == []


def test_a_trigger_azure_refuses_for_its_daily_limit_runs_the_same_attempt_the_next_day(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = scene(sim, STORAGE_TIMEOUT)
    sim.auto_complete_backups = "Completed"
    sim.faults.add("backup_trigger", "daily_limit", times=1)
    now = datetime.now(UTC)
    today = _at(live, now)
    deliver(today, s.event())
    _run(today, _take(today)[1])

    incident = incident_of(today, s.job_id)
    assert incident.Status == IncidentStatus.REMEDIATING
    states = [a.state for a in incident.actions if a.action == "retry"]
    assert states[-1] == "throttled" and "failed" not in states and "exhausted" not in states
    assert "CloudDosAbsoluteLimitReached" in incident.actions[-1].detail
    message, raw = _take(today)
    assert (message.kind, message.attempt, message.day) == (
        MessageKind.RETRY,
        1,
        day_key(next_day(now)),
    )

    tomorrow = _at(live, next_day(now) + timedelta(minutes=1))
    _run(tomorrow, raw)
    drain(tomorrow)

    incident = incident_of(today, s.job_id)
    assert _triggers(sim) == [400, 202] and incident.Status == IncidentStatus.RESOLVED
    assert {a.attempt for a in incident.actions if a.action == "retry" and a.attempt} == {1}
    assert _item_count(today, incident, next_day(now)) == 1  # the new day's attempt, once


def test_a_retry_whose_backup_ends_at_the_daily_limit_is_deferred_not_failed(
    live: Runtime, sim: AzureSimulator
) -> None:
    s = workload_scene(sim, Workload.SQL, **CONFLICT)
    now = datetime.now(UTC)
    today = _at(live, now)
    deliver(today, s.event())
    _run(today, _take(today)[1])  # the backup starts and runs
    started = incident_of(today, s.job_id).actions[-1]
    assert started.state == "triggered"
    sim.complete_job(
        s.vault["id"],
        started.ref,
        "Failed",
        error_code=400001,  # a number of ours: Microsoft publishes none for this code
        error_string=DAILY_LIMIT["error_string"],
        error_title=DAILY_LIMIT["error_title"],
    )
    follow_up, raw = _take(today)
    assert follow_up.kind == MessageKind.FOLLOW_UP
    _run(today, raw)

    incident = incident_of(today, s.job_id)
    last = incident.actions[-1]
    assert (last.state, last.ref) == ("throttled", started.ref)
    assert incident.Status == IncidentStatus.REMEDIATING
    message, _ = _take(today)
    assert (message.kind, message.attempt) == (MessageKind.RETRY, 1)
    assert message.day == day_key(next_day(now))


@pytest.mark.parametrize("failure", ["storage-timeout", "daily-limit"])
def test_a_daily_limit_that_holds_on_3_utc_days_goes_to_a_person(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, failure: str
) -> None:
    if failure == "daily-limit":  # the failure's own day is the first day of the limit
        s, refusals = workload_scene(sim, Workload.SQL, **DAILY_LIMIT), MAX_THROTTLED_DAYS - 1
    else:
        s, refusals = scene(sim, STORAGE_TIMEOUT), MAX_THROTTLED_DAYS
    sim.faults.add("backup_trigger", "daily_limit", times=refusals)
    now = datetime.now(UTC)
    deliver(_at(live, now), s.event())
    for day in range(1, refusals + 1):
        moment = (
            next_day(now + timedelta(days=day - 1)) if failure == "daily-limit" or day > 1 else now
        )
        _run(_at(live, moment), _take(live)[1])
    incident = incident_of(live, s.job_id)
    assert incident.Status == IncidentStatus.ESCALATED
    states = [a.state for a in incident.actions if a.action == "retry"]
    assert states.count("throttled") == refusals - 1 and states[-1] == "exhausted"
    (gave_up,) = [a.detail for a in incident.actions if a.state == "exhausted"]
    assert f"held on {MAX_THROTTLED_DAYS} UTC days" in gave_up
    assert _triggers(sim) == [400] * refusals
    assert live.retry_queue.receive() == []
    assert [r for r in receivers.received("servicenow") if r.method == "POST"]


def test_a_follow_up_redelivered_after_its_deferral_was_sent_changes_nothing(
    live: Runtime, sim: AzureSimulator
) -> None:
    today = _at(live, datetime.now(UTC))
    s, started = _running_retry(today, sim)
    sim.complete_job(s.vault["id"], started.ref, "Failed", 400001, **_limit_error())
    follow_up, raw = _take(today)
    for _ in range(MAX_THROTTLED_DAYS + 1):  # its instance died after the hand-over, again
        run_retry(today, raw.content.decode(), 1, raw.id)

    incident = incident_of(today, s.job_id)
    states = [a.state for a in incident.actions if a.action == "retry"]
    assert states.count("throttled") == 1 and "exhausted" not in states
    assert incident.Status == IncidentStatus.REMEDIATING
    (waiting,) = today.retry_queue.receive(max_messages=32)  # the follow-up is still leased
    deferred = RetryMessage.from_json(waiting.content.decode())
    assert (deferred.id, deferred.kind, deferred.attempt) == (
        follow_up.successor_id,
        MessageKind.RETRY,
        1,
    )


def test_a_retry_whose_backup_hit_the_limit_before_midnight_runs_on_the_day_that_began(
    live: Runtime, sim: AzureSimulator
) -> None:
    midnight = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    evening = _at(live, midnight - timedelta(hours=1))
    sim.clock = lambda: midnight - timedelta(minutes=10)
    s, started = _running_retry(evening, sim)
    sim.complete_job(s.vault["id"], started.ref, "Failed", 400001, **_limit_error())
    after_midnight = _at(live, midnight + timedelta(hours=1))
    _run(after_midnight, _take(evening)[1])  # the follow-up reads it the next day

    message, _ = _take(evening)
    assert message.day == day_key(midnight)  # the day that began, not the one after it


def test_a_retry_whose_backup_azure_retries_itself_starts_no_other(
    live: Runtime, sim: AzureSimulator
) -> None:
    today = _at(live, datetime.now(UTC))
    s, started = _running_retry(today, sim)
    with_retry = _limit_error(
        "CloudDosAbsoluteLimitReachedWithRetry",
        "Operation is blocked as the vault has reached its maximum limit for such operations "
        "permitted in a span of 24 hours.",
    )
    sim.complete_job(s.vault["id"], started.ref, "Failed", 400002, **with_retry)
    _run(today, _take(today)[1])

    incident = incident_of(today, s.job_id)
    last = incident.actions[-1]
    assert (last.action, last.state, last.ref) == ("retry", "skipped", started.ref)
    assert "Azure retries it itself" in last.detail
    assert incident.Status == IncidentStatus.RESOLVED
    assert today.retry_queue.receive() == [] and _triggers(sim) == [202]


def _running_retry(runtime: Runtime, sim: AzureSimulator) -> tuple[Scene, ActionEntry]:
    """A SQL database's conflicting-operation failure whose retry has started its backup."""
    s = workload_scene(sim, Workload.SQL, **CONFLICT)
    deliver(runtime, s.event())
    _run(runtime, _take(runtime)[1])
    started = incident_of(runtime, s.job_id).actions[-1]
    assert started.state == "triggered"
    return s, started


def _limit_error(
    title: str = DAILY_LIMIT["error_title"], text: str = DAILY_LIMIT["error_string"]
) -> dict[str, str]:
    """A workload job's daily-limit failure as ``complete_job`` takes it (Microsoft publishes
    no numbers for these codes: the number passed beside it is ours)."""
    return {"error_string": text, "error_title": title}


# -- a failure that comes back reopens its ticket ---------------------------------------------


def _webhook_events(receivers: Receivers) -> list[str]:
    return [
        r.body["event"]
        for r in receivers.received("webhook")
        if str(r.body.get("event", "")).startswith("ticket.")
    ]


def test_a_failure_that_comes_back_after_its_ticket_was_resolved_reopens_it_everywhere(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    sim.auto_complete_backups = "Failed"
    first = scene(sim, STORAGE_TIMEOUT, started=_night(3))
    assert _on_night(live, first, 3) == IncidentStatus.ESCALATED  # ticket opened
    sim.auto_complete_backups = "Completed"
    fixed = _again(first, 2)
    assert _on_night(live, fixed, 2) == IncidentStatus.RESOLVED  # ticket resolved
    (ticket,) = live.tickets.tickets()
    refs = json.loads(ticket["Refs"])
    assert ticket["Status"] == "resolved"
    assert receivers.tickets("servicenow")[0]["state"] == "6"
    receivers.change_ticket("devops", refs["azure-devops"], System_State="Done")  # a person
    sim.auto_complete_backups = "Failed"
    back = _again(first, 1)

    assert _on_night(live, back, 1) == IncidentStatus.ESCALATED

    incident = incident_of(live, back.job_id)
    assert ("ticket", "reopened") in log_of(incident)
    (ticket,) = live.tickets.tickets()  # the same ticket, not a new one
    assert (ticket["Status"], ticket["Reopens"], ticket["ReopenedBy"]) == (
        "open",
        1,
        back.job_id,
    )
    assert json.loads(ticket["Incidents"]) == [first.job_id, back.job_id]
    # ServiceNow: back to In Progress with a work note, no second incident.
    assert len([r for r in receivers.received("servicenow") if r.method == "POST"]) == 1
    (kept,) = receivers.tickets("servicenow")
    assert (kept["state"], kept["reopen_count"]) == ("2", 1)
    reopening = next(
        r.body
        for r in receivers.received("servicenow")
        if r.method == "PATCH" and r.body.get("state") == "2"
    )
    assert f"Reopened: backup job {back.job_id} failed again" in reopening["work_notes"]
    # Azure DevOps: the work item a person closed is active again, with a comment.
    assert len([r for r in receivers.received("devops") if "/workitems/$" in r.path]) == 1
    (item,) = receivers.tickets("devops")
    assert item["System.State"] == "Doing"  # the Basic process's InProgress state
    assert any(f"Reopened: backup job {back.job_id}" in n for n in _sent_notes(receivers)["devops"])
    # The webhook: one ticket, opened, resolved, reopened.
    events = _webhook_events(receivers)
    assert events.count("ticket.opened") == 1 and events.count("ticket.reopened") == 1
    assert events.index("ticket.resolved") < events.index("ticket.reopened")
    assert receivers.violations == []


def _ticketed(live: Runtime, sim: AzureSimulator) -> tuple[Scene, Incident]:
    """An agent failure with its ticket, resolved by a person's fix (as a later retry would)."""
    first = scene(sim, AGENT)
    deliver(live, first.event())
    incident = incident_of(live, first.job_id)
    assert live.tickets.resolve(incident, "fixed by the owner")
    return first, incident


def test_a_reopening_is_sent_once_however_often_it_is_delivered(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    first, _ = _ticketed(live, sim)
    back = first.repeat(AGENT)
    deliver(live, back.event())
    incident = incident_of(live, back.job_id)
    for _ in range(2):  # a redelivery of the same incident's ticket step
        result = live.tickets.open_or_append(incident, "again")
        assert result.reopened and not result.created

    reopened = [
        r for r in receivers.received("servicenow") if r.method == "PATCH" and "state" in r.body
    ]
    assert [r.body["state"] for r in reopened] == ["6", "2"]  # resolved once, reopened once
    assert _webhook_events(receivers).count("ticket.reopened") == 1
    third = first.repeat(AGENT)
    deliver(live, third.event())
    assert ("ticket", "appended") in log_of(incident_of(live, third.job_id))  # open: appended
    assert len(live.tickets.tickets()) == 1 and receivers.violations == []


def test_a_servicenow_incident_closed_meanwhile_is_followed_by_a_new_one_there(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    first, _ = _ticketed(live, sim)
    (ticket,) = live.tickets.tickets()
    old = json.loads(ticket["Refs"])["servicenow"]
    receivers.change_ticket("servicenow", old, state="7")  # Closed: read-only in ServiceNow
    back = first.repeat(AGENT)
    deliver(live, back.event())

    incident = incident_of(live, back.job_id)
    assert ("ticket", "reopened") in log_of(incident) and ("ticket", "failed") not in log_of(
        incident
    )
    assert receivers.violations == [f"servicenow: {old} is closed"]  # the reopening it refused
    opened = [r.body for r in receivers.received("servicenow") if r.method == "POST"]
    assert [o["correlation_id"] for o in opened] == [ticket["TicketId"], f"{ticket['TicketId']}-1"]
    assert f"refused to reopen {old}" in opened[-1]["description"]
    (row,) = live.tickets.tickets()
    new = json.loads(row["Refs"])["servicenow"]
    assert new != old and json.loads(row["SinkErrors"]) == []
    assert _webhook_events(receivers).count("ticket.reopened") == 1  # the others are reopened

    third = first.repeat(AGENT)
    deliver(live, third.event())  # the ticket is open: the occurrence reaches the new incident
    noted = [r.path for r in receivers.received("servicenow") if r.method == "PATCH"]
    assert noted[-1].endswith(f"/{new}") and receivers.violations == [
        f"servicenow: {old} is closed"
    ]


def test_concurrent_failures_that_come_back_reopen_each_sink_once(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    first = scene(sim, AGENT)
    deliver(live, first.event())
    repeats = [first.repeat(AGENT) for _ in range(4)]
    for repeat in repeats:
        deliver(live, repeat.event())
    incidents = [incident_of(live, r.job_id) for r in repeats]
    assert live.tickets.resolve(incidents[0], "fixed by the owner")
    start = threading.Barrier(len(incidents))

    def again(incident: Incident) -> TicketResult:
        start.wait()
        return live.tickets.open_or_append(incident, "again")

    with ThreadPoolExecutor(len(incidents)) as pool:
        results = list(pool.map(again, incidents))

    assert sum(r.reopened for r in results) == 1 and not any(r.errors for r in results)
    states = [r.body["state"] for r in receivers.received("servicenow") if "state" in r.body]
    assert states == ["6", "2"]  # resolved once, reopened once
    assert _webhook_events(receivers).count("ticket.reopened") == 1
    assert len(live.tickets.tickets()) == 1 and receivers.violations == []


def test_with_no_reopen_window_a_failure_that_comes_back_opens_a_new_ticket(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    never = _with(live, ticket_reopen_days=0)
    first, _ = _ticketed(never, sim)
    back = first.repeat(AGENT)
    deliver(never, back.event())
    assert ("ticket", "opened") in log_of(incident_of(never, back.job_id))
    assert sorted(t["Status"] for t in never.tickets.tickets()) == ["open", "resolved"]
    assert len([r for r in receivers.received("servicenow") if r.method == "POST"]) == 2
