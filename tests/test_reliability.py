"""Reliability: duplicates at scale, a storage outage mid-batch, Azure API fault storms, and a
watcher that loses nothing when its work per run is cut."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.runtime import Runtime
from handlers.watcher import watch
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS
from tests.world import STORAGE_TIMEOUT, SUB, scene


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
    """A regional outage fails many jobs at the same moment; a run that stops at its budget
    in the middle of them must not move its checkpoint past the ones it left."""
    bounded = Runtime.from_settings(
        dataclasses.replace(
            live.settings, subscription_ids=frozenset({SUB}), watch_max_jobs=4, dry_run=True
        ),
        FAST_CLIENTS,
    )
    at = datetime.now(UTC) - timedelta(hours=2)
    first = scene(sim, STORAGE_TIMEOUT, vm_name="vm-tied", started=at)
    jobs = {first.job_id} | {
        sim.add_job(
            first.vault["id"],
            vm_name=first.vm_name,
            vm_resource_group=first.vm_group,
            error_code=STORAGE_TIMEOUT[0],
            error_string=STORAGE_TIMEOUT[1],
            start_time=at,
            end_time=at + timedelta(minutes=30),  # the same end time as the first job
        )["name"]
        for _ in range(9)
    }
    topic = _Topic()
    for _ in range(5):
        watch(bounded, topic)
    published = [e.data["name"] for e in topic.events]
    assert sorted(published) == sorted(jobs)  # every job, each once
