"""The morning digest (issue #12 item 4): its content on the seeded month's last week, the
quiet night, one digest per UTC day under double delivery, channels that fail or were
already sent to, and the command."""

from __future__ import annotations

import dataclasses
import io
import json
import statistics
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.audit import health
from handlers.audit.query import failed_at
from handlers.cli.main import EXIT_OK, main
from handlers.core.history import NIGHT_SHIFT
from handlers.core.incident import IncidentStatus
from handlers.core.results import retry_result
from handlers.digest import render
from handlers.digest.content import (
    HISTORY,
    Digest,
    Fix,
    compose,
    waits_for_person,
)
from handlers.digest.daily import SETTLE, compose_for, on_timer, send_daily
from handlers.pipeline.runtime import Runtime
from handlers.storage.digests import DigestState
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.world import (
    AGENT,
    STORAGE_TIMEOUT,
    World,
    deliver,
    drain,
    fixed_after,
    incident_of,
    p90,
    scene,
)

CHANNELS = ("teams", "slack", "webhook")


def _at(runtime: Runtime, moment: datetime) -> Runtime:
    """The runtime with its clock stopped at ``moment`` (nothing reads the wall clock)."""
    return dataclasses.replace(runtime, clock=lambda: moment)


def _messages(receivers: Receivers) -> dict[str, list[Any]]:
    """What each chat channel received (the webhook's notifications, not its tickets)."""
    got: dict[str, list[Any]] = {c: [] for c in CHANNELS}
    for r in receivers.received():
        if r.service in ("teams", "slack"):
            got[r.service].append(r.body)
        elif r.service == "webhook" and r.path.endswith("/notify"):
            got["webhook"].append(r.body)
    return got


# -- content on the seeded month (its last week) ----------------------------------------------


@pytest.fixture(scope="module")
def seeded(world: World) -> tuple[World, Any]:
    since = world.now - timedelta(days=1)
    return world, compose_for(world.storage, since, world.now, dry_run=False)


def test_failed_counts_every_incident_recorded_since_the_last_digest(
    seeded: tuple[World, Any],
) -> None:
    world, digest = seeded
    recorded = [
        i
        for i in world.incidents
        if digest.since <= i.FirstSeen < digest.until and i.Status != IncidentStatus.REJECTED
    ]
    assert recorded, "the seeded world must have failures in its last day"
    expected = Counter((i.resource_label, i.Rule) for i in recorded)
    assert {(f.workload, f.rule): f.count for f in digest.failed} == expected
    assert digest.failures == len(recorded)
    counts = [f.count for f in digest.failed]
    assert counts == sorted(counts, reverse=True)


def test_fixed_lists_the_successful_retries_and_stops_of_the_window(
    seeded: tuple[World, Any],
) -> None:
    world, digest = seeded
    expected = sorted(
        (i.IncidentId, a.action)
        for i in world.incidents
        for a in i.actions
        if a.state == "succeeded"
        and a.action in ("retry", "stop_protection")
        and digest.since <= datetime.fromisoformat(a.at) < digest.until
    )
    names = {"retry succeeded": "retry", "protection stopped, data kept": "stop_protection"}
    assert sorted((f.incident, names[f.what]) for f in digest.fixed) == expected


def test_waiting_is_every_open_ticket(seeded: tuple[World, Any]) -> None:
    world, digest = seeded
    open_ids = {r["TicketId"] for r in world.storage.tickets.rows(status="open")}
    assert open_ids and {w.ref for w in digest.waiting if w.kind == "ticket"} == open_ids


def test_recurring_failures_are_consecutive_nights_up_to_the_last_one(
    seeded: tuple[World, Any],
) -> None:
    world, digest = seeded
    assert digest.recurring, "the seeded world has items failing again and again"
    for streak in digest.recurring:
        group = [
            i
            for i in world.incidents
            if (i.VaultName, i.resource_name, i.Rule) == (streak.vault, streak.item, streak.rule)
            and digest.until - HISTORY <= failed_at(i) < digest.until
        ]
        nights = {(failed_at(i) - NIGHT_SHIFT).date() for i in group}
        last = max(nights)
        assert {last - timedelta(days=n) for n in range(streak.nights)} <= nights
        assert last - timedelta(days=streak.nights) not in nights
        assert any(digest.since <= i.FirstSeen < digest.until for i in group)
    assert [s.nights for s in digest.recurring] == sorted(
        (s.nights for s in digest.recurring), reverse=True
    )


def test_retry_success_per_rule_is_the_audits_over_the_last_week(
    seeded: tuple[World, Any],
) -> None:
    world, digest = seeded
    results: dict[str, Counter[str]] = {}
    for i in world.incidents:
        if i.PlannedAction == "retry" and digest.until - HISTORY <= failed_at(i) < digest.until:
            results.setdefault(i.Rule, Counter())[retry_result(i)] += 1
    expected = {
        rule: (c["succeeded"], c["failed"])
        for rule, c in results.items()
        if c["succeeded"] + c["failed"]
    }
    assert expected and {r.rule: (r.succeeded, r.failed) for r in digest.retry} == expected


def test_time_to_resolution_per_rule_is_over_the_last_week(seeded: tuple[World, Any]) -> None:
    world, digest = seeded
    times: dict[str, list[float]] = {}
    for i in world.incidents:
        took = fixed_after(i)
        if took is not None and digest.until - HISTORY <= failed_at(i) < digest.until:
            times.setdefault(i.Rule, []).append(took)
    assert times and {r.rule for r in digest.resolution} == set(times)
    for r in digest.resolution:
        assert r.resolved == len(times[r.rule])
        assert r.median.total_seconds() == pytest.approx(statistics.median(times[r.rule]))
        assert r.p90.total_seconds() == pytest.approx(p90(times[r.rule]))
    medians = [r.median for r in digest.resolution]
    assert medians == sorted(medians, reverse=True)  # the slowest first
    shared = digest.as_json()["timeToResolution"]
    assert [(t["rule"], t["resolved"]) for t in shared] == [
        (r.rule, r.resolved) for r in digest.resolution
    ]
    assert render.webhook_body(digest)["digest"]["timeToResolution"] == shared


def test_the_digest_reads_as_text_and_in_each_channels_shape(seeded: tuple[World, Any]) -> None:
    _, digest = seeded
    text = render.text(digest)
    assert text.startswith(f"Backup digest {digest.day}, since ")
    titles = ("Failed since the last digest:", "Fixed automatically:", "Waits for a person:")
    for title in (*titles, "Retry success per rule", "Time to resolution per rule"):
        assert f"\n{title}" in text
    slowest = digest.resolution[0]
    assert f"{slowest.rule}: median " in text and f"({slowest.resolved} fixed)" in text
    card = render.teams_card(digest)["attachments"][0]["content"]
    blocks = [b["text"] for b in card["body"]]
    rule = digest.failed[0].rule
    assert any(rule.replace("-", "\\-") in b for b in blocks)  # Markdown escaped for Teams
    slack = render.slack_message(digest)
    assert slack["text"].startswith("Backup digest") and len(slack["blocks"]) >= 4
    assert all(len(b["text"]["text"]) <= 3000 for b in slack["blocks"])


# -- one digest per day, every channel once ---------------------------------------------------


def test_a_quiet_night_says_so_in_one_line(live: Runtime, receivers: Receivers) -> None:
    now = datetime(2026, 12, 7, 7, tzinfo=UTC)

    sent = send_daily(_at(live, now))

    assert sent.digest is not None and sent.digest.quiet and sent.state == DigestState.SENT
    line = render.text(sent.digest)
    assert line.count("\n") == 1 and line.startswith("Quiet night: no backup failed")
    assert "Nothing waits for a person" in line
    got = _messages(receivers)
    assert [len(got[c]) for c in CHANNELS] == [1, 1, 1]
    assert got["slack"][0]["text"].strip() == line.strip()
    assert len(got["teams"][0]["attachments"][0]["content"]["body"]) == 1
    row = live.storage.digests.get("2026-12-07")
    assert (
        row is not None and row["Quiet"] is True and json.loads(row["Channels"]) == sorted(CHANNELS)
    )


def test_two_timer_runs_of_a_day_send_one_digest(
    live: Runtime, receivers: Receivers, as_app_settings: Any
) -> None:
    import function_app

    as_app_settings(live.settings)
    function_app.send_digest(None)  # type: ignore[arg-type]
    function_app.send_digest(None)  # type: ignore[arg-type]  (the same day again)

    assert [len(v) for v in _messages(receivers).values()] == [1, 1, 1]


def test_concurrent_runs_of_a_day_send_one_digest(live: Runtime, receivers: Receivers) -> None:
    now = datetime(2026, 12, 7, 7, tzinfo=UTC)
    start = threading.Barrier(4)
    states: list[str] = []

    def run() -> None:
        start.wait()
        states.append(send_daily(_at(live, now + timedelta(seconds=1))).state)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert states.count(DigestState.SENT) == 1
    assert [len(v) for v in _messages(receivers).values()] == [1, 1, 1]


def test_the_next_day_starts_where_the_last_digest_ended(
    live: Runtime, sim: AzureSimulator
) -> None:
    first_day = datetime(2026, 12, 7, 7, tzinfo=UTC)
    first = send_daily(_at(live, first_day))
    second = send_daily(_at(live, first_day + timedelta(days=1, minutes=3)))

    assert first.digest is not None and second.digest is not None
    # It ends a few minutes before its run: an incident stamped just before the run but stored
    # after its query is in the next window, never in none.
    assert second.digest.since == first.digest.until == first_day - SETTLE
    assert second.day == "2026-12-08"


def _channel_check(runtime: Runtime, now: datetime) -> health.Check:
    queues = (runtime.retry_queue, runtime.poison_queue)
    report = health.check(runtime.storage, runtime.settings, runtime.dead_letters, queues, now)
    (check,) = [c for c in report.checks if c.name == "ticket sinks and channels"]
    return check


def test_a_failed_channel_gets_the_digest_from_a_later_run_of_the_day(
    live: Runtime, receivers: Receivers
) -> None:
    now = datetime(2026, 12, 7, 7, tzinfo=UTC)
    receivers.fail("slack", 500)  # not retried by the transport: a 500 may have been taken

    first = send_daily(_at(live, now))
    missed = _channel_check(live, now)  # health sees the miss
    assert missed.status == health.DEGRADED
    assert any(d.startswith("digest 2026-12-07: slack: HTTP 500") for d in missed.details)
    again = send_daily(_at(live, now + timedelta(hours=1)))
    done = send_daily(_at(live, now + timedelta(hours=2)))

    assert (first.state, set(first.errors)) == (DigestState.PARTIAL, {"slack"})
    assert (again.state, again.channels) == (DigestState.SENT, ["slack"])
    assert done.digest is None and done.state == "sent already"
    got = _messages(receivers)
    assert [len(got["teams"]), len(got["webhook"])] == [1, 1]
    assert got["slack"][-1]["text"] == render.slack_message(first.digest)["text"]  # type: ignore[arg-type]
    assert _channel_check(live, now).status == health.OK  # it was delivered after all


def test_a_run_that_died_is_taken_over_for_the_channels_it_missed(
    live: Runtime, receivers: Receivers
) -> None:
    now = datetime(2026, 12, 7, 7, tzinfo=UTC)
    lease = timedelta(seconds=live.settings.claim_lease_seconds)
    digests = live.storage.digests
    digests.begin("2026-12-07", now - timedelta(days=1), now, now, lease)
    digests.note_channel("2026-12-07", "teams")  # then the instance died

    assert send_daily(_at(live, now + lease / 2)).state == "sending already"  # lease still live
    taken = send_daily(_at(live, now + lease * 2))

    assert taken.state == DigestState.SENT and sorted(taken.channels) == ["slack", "webhook"]
    assert taken.digest is not None and taken.digest.until == now  # the first run's window
    got = _messages(receivers)
    assert [len(got[c]) for c in CHANNELS] == [0, 1, 1]


def test_the_digest_can_be_switched_off(live: Runtime, receivers: Receivers) -> None:
    off = Runtime.from_settings(dataclasses.replace(live.settings, digest_enabled=False))
    assert on_timer(off) is None
    assert receivers.received() == []


# -- what the pipeline leaves, read back -------------------------------------------------------


def test_a_night_of_the_real_pipeline_in_the_digest(
    live: Runtime, sim: AzureSimulator, receivers: Receivers
) -> None:
    sim.auto_complete_backups = "Completed"
    retried = scene(sim, STORAGE_TIMEOUT, vm_name="vm-retried")
    ticketed = scene(sim, AGENT, vm_name="vm-agent")
    deliver(live, retried.event())
    drain(live)
    deliver(live, ticketed.event())
    now = datetime.now(UTC) + timedelta(minutes=1)

    digest = compose_for(live.storage, now - timedelta(hours=1), now, dry_run=False)

    assert digest.failures == 2
    assert {f.rule for f in digest.failed} == {
        incident_of(live, retried.job_id).Rule,
        incident_of(live, ticketed.job_id).Rule,
    }
    assert [(f.what, f.item) for f in digest.fixed] == [("retry succeeded", "vm-retried")]
    (ticket,) = digest.waiting
    assert (ticket.kind, ticket.item) == ("ticket", "vm-agent")
    assert incident_of(live, ticketed.job_id).Status == IncidentStatus.ESCALATED
    assert not digest.quiet


def test_an_incident_waiting_for_a_person_is_listed(live: Runtime) -> None:
    from tests.world import seed

    [incident] = seed(live.storage, 1, days=1, now=datetime.now(UTC))
    waiting = dataclasses.replace(incident, Status=IncidentStatus.REMEDIATING)
    waiting.log("stop_protection", "awaiting_approval", "a person must approve the stop")
    assert waits_for_person(waiting)
    final = dataclasses.replace(waiting, Status=IncidentStatus.RESOLVED)
    assert not waits_for_person(final)
    approval = dataclasses.replace(
        incident, Status=IncidentStatus.AWAITING_APPROVAL, ActionLog="[]"
    )
    approval.log("approval", "requested", "Approve / Reject links sent")
    assert waits_for_person(approval)  # whatever its latest step
    remediating = dataclasses.replace(incident, Status=IncidentStatus.REMEDIATING, ActionLog="[]")
    assert not waits_for_person(remediating)

    now = datetime.now(UTC) + timedelta(minutes=5)
    digest = compose([waiting], [], None, now - timedelta(days=1), now, dry_run=True)

    assert [(w.kind, w.ref) for w in digest.waiting] == [("incident", incident.IncidentId)]
    assert "awaiting_approval" in digest.waiting[0].detail
    assert "dry run: nothing was changed" in render.text(digest)


def test_event_text_is_escaped_in_every_channel() -> None:
    now = datetime(2026, 12, 7, 7, tzinfo=UTC)
    hostile = "vm_<b>*x*</b>&[y](z)"
    fix = Fix("retry succeeded", hostile, "rsv", "rule-1", "2026-12-07T01:00:00+00:00", "id")
    digest = Digest("2026-12-07", now - timedelta(days=1), now, False, (), (fix,), (), (), ())

    card = json.dumps(render.teams_card(digest))
    slack = render.slack_message(digest)
    hook = render.webhook_body(digest)

    assert "*x*" not in card and json.dumps("\\*x\\*")[1:-1] in card
    assert "<b>" not in json.dumps(slack) and "&lt;b&gt;" in slack["blocks"][2]["text"]["text"]
    assert "&amp;" in slack["text"]
    assert hook["digest"]["fixed"][0]["item"] == hostile  # JSON needs no escaping


# -- the command -------------------------------------------------------------------------------


def test_cli_previews_without_sending_and_sends_once(
    live: Runtime, receivers: Receivers, as_app_settings: Any
) -> None:
    as_app_settings(live.settings)
    preview, data, sent, again = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()

    assert main(["digest", "--since", "2d"], preview) == EXIT_OK
    assert main(["digest", "--format", "json"], data) == EXIT_OK
    assert receivers.received() == [] and live.storage.digests.get(_today()) is None
    assert main(["digest", "--send"], sent, io.StringIO()) == EXIT_OK
    err = io.StringIO()
    assert main(["digest", "--send"], again, err) == EXIT_OK

    assert preview.getvalue().startswith("Quiet night")
    assert json.loads(data.getvalue())["quiet"] is True
    assert sent.getvalue().startswith("Quiet night")
    assert again.getvalue() == "" and "sent already" in err.getvalue()
    assert [len(v) for v in _messages(receivers).values()] == [1, 1, 1]


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


# -- a night nobody received is never skipped --------------------------------------------------


def _window(body: dict[str, Any]) -> tuple[str, str]:
    return body["digest"]["since"], body["digest"]["until"]


def test_a_digest_whose_run_died_after_its_claim_is_sent_before_the_next_days(
    live: Runtime, receivers: Receivers
) -> None:
    yesterday = datetime(2026, 12, 7, 7, tzinfo=UTC)
    lease = timedelta(seconds=live.settings.claim_lease_seconds)
    live.storage.digests.begin(
        "2026-12-07", yesterday - timedelta(days=1), yesterday, yesterday, lease
    )  # fmt: skip  (then the instance died)
    stuck = _channel_check(live, yesterday + timedelta(hours=3))
    assert stuck.status == health.DEGRADED
    assert any(d.startswith("digest 2026-12-07: stuck in sending") for d in stuck.details)

    today = send_daily(_at(live, yesterday + timedelta(days=1)))

    got = _messages(receivers)
    windows = [_window(body) for body in got["webhook"]]
    assert windows == [
        ((yesterday - timedelta(days=1)).isoformat(), yesterday.isoformat()),
        (yesterday.isoformat(), today.digest.until.isoformat()),  # type: ignore[union-attr]
    ]
    assert [len(got[c]) for c in CHANNELS] == [2, 2, 2]
    assert live.storage.digests.get("2026-12-07")["State"] == DigestState.SENT  # type: ignore[index]
    assert _channel_check(live, yesterday + timedelta(days=1)).status == health.OK


def test_a_channel_that_missed_a_day_gets_that_days_digest_from_the_next_days_run(
    live: Runtime, receivers: Receivers
) -> None:
    yesterday = datetime(2026, 12, 7, 7, tzinfo=UTC)
    receivers.fail("slack", 500)
    assert send_daily(_at(live, yesterday)).state == DigestState.PARTIAL  # nobody re-sent it

    send_daily(_at(live, yesterday + timedelta(days=1)))

    got = _messages(receivers)
    refused, late, today = got["slack"]  # the receiver keeps the one it refused
    assert late["text"] == refused["text"]  # yesterday's digest, its own window
    assert f"since {(yesterday - timedelta(days=1) - SETTLE):%Y-%m-%d %H:%M}" in late["text"]
    assert f"since {yesterday - SETTLE:%Y-%m-%d %H:%M}" in today["text"]
    assert [len(got["teams"]), len(got["webhook"])] == [2, 2]
    assert live.storage.digests.get("2026-12-07")["State"] == DigestState.SENT  # type: ignore[index]


def test_a_channel_whose_delivery_is_not_recorded_does_not_keep_the_others_from_theirs(
    live: Runtime, receivers: Receivers
) -> None:
    def storage_down(channel: str) -> None:
        raise ConnectionError(f"the digests table is unreachable ({channel})")

    now = datetime(2026, 12, 7, 7, tzinfo=UTC)
    bodies = render.bodies(Digest("2026-12-07", now - timedelta(days=1), now, False, *[()] * 5))

    errors = live.notifier.post(bodies, on_sent=storage_down)

    assert errors == {}
    assert [len(v) for v in _messages(receivers).values()] == [1, 1, 1]


def test_an_orphan_whose_incident_or_ticket_is_listed_is_not_counted_again(live: Runtime) -> None:
    from handlers.storage.sweeps import SweepRun
    from tests.world import seed

    now = datetime(2026, 12, 7, 7, tzinfo=UTC)
    [escalated, awaiting] = seed(live.storage, 2, days=1, now=now)
    awaiting = dataclasses.replace(awaiting, Status=IncidentStatus.AWAITING_APPROVAL)
    escalated.log("ticket", "opened", "the owner is told", ref="INC-7")
    ticket = {"TicketId": "INC-7", "CreatedAt": now, "Rule": "vm-not-found", "VmName": "vm-a"}
    orphans = [
        {"Vm": name, "Vault": "rsv", "Outcome": "o", "ItemId": f"item-{name}", "Incident": ref}
        for name, ref in (("vm-a", escalated.IncidentId), ("vm-b", awaiting.IncidentId),
                          ("vm-c", ""))
    ]  # fmt: skip
    sweep = SweepRun({"StartedAt": now}, orphans, 0)

    digest = compose([escalated, awaiting], [ticket], sweep, now - HISTORY, now, dry_run=False)

    assert [(w.kind, w.ref) for w in digest.waiting] == [
        ("ticket", "INC-7"),
        ("incident", awaiting.IncidentId),
        ("orphan", "item-vm-c"),  # the only one nothing else lists
    ]
