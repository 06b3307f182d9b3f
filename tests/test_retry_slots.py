"""Staggered retries reserve their start slot: a retry that finds its vault's window full
takes a slot in the first later window that has one and waits for it with one message, so a
retry costs at most three queue messages (scheduled, waiting for its slot, the follow-up),
however many retries queue in the vault, and the limit per window still holds. The waiting
message is verified again when it runs, like any other."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.actions.retry_messages import MessageKind, RetryMessage
from handlers.core.incident import IncidentStatus
from handlers.intake.retry_queue import run_retry
from handlers.pipeline.runtime import Runtime
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS
from tests.world import STORAGE_TIMEOUT, deliver, incident_of, scene

WINDOW = timedelta(minutes=60)


class _Clock:
    """The runtime's clock (what the retry action reads as now), moved by the test."""

    def __init__(self) -> None:
        seconds = WINDOW.total_seconds()
        # A few minutes into a window, so that no test starts at its very edge.
        start = datetime.now(UTC).timestamp() // seconds * seconds + 300
        self.now = datetime.fromtimestamp(start, UTC)

    def window(self, offset: int) -> datetime:
        seconds = WINDOW.total_seconds()
        return datetime.fromtimestamp(self.now.timestamp() // seconds * seconds, UTC) + (
            offset * WINDOW
        )

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


def _staggered(live: Runtime, clock: _Clock, limit: int = 2) -> Runtime:
    settings = dataclasses.replace(
        live.settings, retry_stagger_limit=limit, retry_stagger_minutes=60
    )
    return dataclasses.replace(Runtime.from_settings(settings, FAST_CLIENTS), clock=clock)


class _Queue:
    """Reads the retry queue, counting every message handled per incident."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.handled: Counter[str] = Counter()

    def take(self) -> list[tuple[RetryMessage, Any]]:
        messages = self.runtime.retry_queue.receive(max_messages=32, visibility_seconds=60)
        return [(RetryMessage.from_json(m.content.decode()), m) for m in messages]

    def run(self, message: RetryMessage, raw: Any) -> None:
        run_retry(self.runtime, raw.content.decode(), 1, raw.id)
        self.runtime.retry_queue.delete(raw)
        self.handled[message.rk] += 1


def _triggers(sim: AzureSimulator) -> int:
    return len([c for c in sim.calls_to(route="backup_trigger") if c.status == 202])


def _key(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M")


def test_a_full_window_reserves_the_next_slots_and_each_retry_waits_once(
    live: Runtime, sim: AzureSimulator, clock: _Clock
) -> None:
    staggered = _staggered(live, clock)
    queue = _Queue(staggered)
    scenes = [scene(sim, STORAGE_TIMEOUT, vm_name=f"vm-{i}") for i in range(5)]
    for s in scenes:
        deliver(staggered, s.event())
    for message, raw in queue.take():
        queue.run(message, raw)
    assert _triggers(sim) == 2  # the window's two slots
    waiting = [(m, raw) for m, raw in queue.take() if m.kind == MessageKind.RETRY]
    slots = sorted(m.slot for m, _ in waiting)
    # Windows fill in order: two slots in the next window, one in the one after.
    assert slots == [_key(clock.window(1))] * 2 + [_key(clock.window(2))]
    for s in scenes:
        detail = incident_of(staggered, s.job_id).actions[-1].detail
        assert "2 retries already started in vault" in detail or "started" in detail
    for window in (clock.window(1), clock.window(2)):
        clock.now = window + timedelta(seconds=5)
        for message, raw in waiting:
            if message.slot == _key(clock.window(0)):
                queue.run(message, raw)
    assert _triggers(sim) == 5  # every retry started, in its own window
    counts = staggered.storage.counters.counts()
    assert sum(counts) == 5 + 5 and max(counts) <= 2  # 5 daily attempts, 5 slots, ≤ 2 a window
    # One scheduled message each, and one more wait for those that reserved a later slot.
    assert sorted(queue.handled.values()) == [1, 1, 2, 2, 2]
    for message, raw in queue.take():  # the follow-ups: the third and last message
        assert message.kind == MessageKind.FOLLOW_UP
        staggered.retry_queue.delete(raw)


def test_a_reserved_retry_is_verified_again_when_its_window_comes(
    live: Runtime, sim: AzureSimulator, clock: _Clock
) -> None:
    staggered = _staggered(live, clock, limit=1)
    queue = _Queue(staggered)
    first, second = (scene(sim, STORAGE_TIMEOUT, vm_name=f"vm-{i}") for i in range(2))
    for s in (first, second):
        deliver(staggered, s.event())
    for message, raw in queue.take():
        queue.run(message, raw)
    assert _triggers(sim) == 1
    (waiting,) = [(m, raw) for m, raw in queue.take() if m.kind == MessageKind.RETRY]
    # Meanwhile a scheduled backup of the waiting item succeeds: no retry is needed any more.
    late = second if waiting[0].rk == incident_of(staggered, second.job_id).RowKey else first
    done = late.add_job(status="Completed", error_code=None)
    clock.now = clock.window(1) + timedelta(seconds=5)
    queue.run(*waiting)
    assert _triggers(sim) == 1  # no backup for an item that no longer needs one
    incident = incident_of(staggered, late.job_id)
    assert incident.Status == IncidentStatus.RESOLVED and incident.actions[-1].ref == done["name"]


def test_a_message_early_for_its_slot_waits_again_and_a_late_one_takes_a_new_slot(
    live: Runtime, sim: AzureSimulator, clock: _Clock
) -> None:
    staggered = _staggered(live, clock, limit=1)
    queue = _Queue(staggered)
    for s in (scene(sim, STORAGE_TIMEOUT, vm_name=f"vm-{i}") for i in range(2)):
        deliver(staggered, s.event())
    for message, raw in queue.take():
        queue.run(message, raw)
    (waiting,) = [(m, raw) for m, raw in queue.take() if m.kind == MessageKind.RETRY]
    assert waiting[0].slot == _key(clock.window(1))
    taken = sum(staggered.storage.counters.counts())
    queue.run(*waiting)  # delivered early (clocks differ): it waits again for the same slot
    (again,) = [(m, raw) for m, raw in queue.take() if m.kind == MessageKind.RETRY]
    assert again[0].slot == waiting[0].slot and again[0].seq == waiting[0].seq + 1
    assert sum(staggered.storage.counters.counts()) == taken  # nothing taken twice
    assert _triggers(sim) == 1
    clock.now = clock.window(3) + timedelta(seconds=5)  # delivered after its window passed
    queue.run(*again)
    assert _triggers(sim) == 2  # a slot of the current window, taken afresh
    assert (
        json.loads(json.dumps(staggered.storage.counters.counts()))
        and max(staggered.storage.counters.counts()) <= 1
    )
