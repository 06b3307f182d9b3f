"""Detection: the time from a backup job's end to its incident, on the default schedule.

A night of failures in a subscription of 1,000 vaults: failed jobs end at random moments over
``window`` minutes, each in a random vault, and appear in the simulator when the simulated
clock passes their end. ``watch_backup_jobs`` runs as the Functions host's timer runs it
(:mod:`bench.timer`) with the default settings (schedule, time budget, ARM read pacing); each
event it publishes goes to ``respond()`` (dry run) at once, and the incident's moment is read
on the clock. Event Grid's own delivery (typically well under a second) is not added.

The clock is a :class:`sandbox.clock.SkippingClock`: the work of a run takes its real time,
the waits (pacing, the time between timer runs) are skipped. The baseline is the same night
on the schedule the app had before (every 15 minutes), measured in the same run. ARM reads
are counted at the simulator and divided by the simulated time the night took: the sustained
read rate, against ARM's 25 reads a second per principal and subscription.
"""

from __future__ import annotations

import random
import statistics
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.pipeline.policies import SansIOHTTPPolicy

from bench import timer, world
from bench.common import Row
from handlers.core.settings import Settings
from sandbox.azurite import Azurite
from sandbox.clock import SkippingClock
from sandbox.simulator import AzureSimulator

#: The detection target (p50) and ARM's read refill rate.
TARGET_P50_SECONDS = 120
ARM_READS_PER_SECOND = 25
#: The app's schedule before this change: the baseline.
OLD_SCHEDULE = "0 */15 * * * *"


class _Night:
    """Failed jobs that end over the window; each is added to the simulator once the clock
    has passed its end (checked before every request the app sends)."""

    def __init__(self, sim: AzureSimulator, clock: SkippingClock, base: datetime, vaults: int):
        self.sim, self.clock, self.base = sim, clock, base
        self.vaults = [
            sim.add_vault(world.SUB, world.VAULT_RG, f"rsv-{v:04d}")["id"] for v in range(vaults)
        ]
        self.pending: list[tuple[float, int]] = []
        self.ends: dict[str, float] = {}
        self.lock = threading.Lock()

    def at(self, seconds: float) -> datetime:
        return self.base + timedelta(seconds=seconds)

    def plan(self, jobs: int, window: float, seed: int = 13) -> None:
        rng = random.Random(seed)
        count = len(self.vaults)
        self.pending = sorted((rng.uniform(0, window), rng.randrange(count)) for _ in range(jobs))

    def seed_due(self) -> None:
        with self.lock:
            now = self.clock.now()
            while self.pending and self.pending[0][0] <= now:
                end, vault = self.pending.pop(0)
                job = self.sim.add_job(
                    self.vaults[vault],
                    vm_name=f"vm-{len(self.ends):05d}",
                    vm_resource_group="rg-app",
                    error_code=400234,
                    error_string="Copying backed up data from vault timed out",
                    start_time=self.at(end) - timedelta(minutes=30),
                    end_time=self.at(end),
                )
                self.ends[job["name"]] = end


class _SeedPolicy(SansIOHTTPPolicy):  # type: ignore[type-arg]
    def __init__(self, night: _Night) -> None:
        super().__init__()
        self.night = night

    def on_request(self, request: Any) -> None:
        self.night.seed_due()


class _Responder:
    """The topic and its subscription in one: each published event goes to ``respond()``."""

    def __init__(self, runtime: Any, clock: SkippingClock) -> None:
        self.runtime, self.clock = runtime, clock
        self.incidents: dict[str, float] = {}
        self.lock = threading.Lock()

    def send(self, events: list[Any]) -> None:
        from handlers.intake.events import cloud_event, parse
        from handlers.pipeline.respond import respond

        for event in events:
            respond(self.runtime, parse(cloud_event(event.data, str(uuid.uuid4()))))
            with self.lock:
                self.incidents.setdefault(event.data["name"], self.clock.now())


def measure(
    vaults: int, jobs: int, window_minutes: float, schedule: str | None = None
) -> dict[str, Any]:
    """One night on ``schedule`` (the default when None): latencies and reads."""
    from handlers.intake.watcher import watch
    from handlers.pipeline.runtime import Runtime

    with Azurite() as azurite, AzureSimulator() as sim:
        clock = SkippingClock()
        night = _Night(sim, clock, datetime.now(UTC) - timedelta(hours=6), vaults)
        night.plan(jobs, window_minutes * 60)
        sim.clock = lambda: night.at(clock.now())
        defaults = Settings()
        settings = Settings(
            storage_connection=azurite.connection_string,
            table_name_prefix="detect",
            dry_run=True,
            subscription_ids=frozenset({world.SUB}),
            management_url=sim.base_url,
            ca_bundle=sim.ca_pem_path,
            static_token=world.TOKEN,
            watch_schedule=schedule or defaults.watch_schedule,
        )
        options = {"polling_interval": 0, "per_call_policies": [_SeedPolicy(night)]}
        runtime = Runtime.from_settings(settings, options, clock.pace())
        responder = _Responder(runtime, clock)
        period = timer.period_seconds(settings.watch_schedule)
        window = window_minutes * 60

        def done(_report: Any) -> bool:
            return (
                clock.now() >= window
                and not night.pending
                and (set(night.ends) <= set(responder.incidents))
            )

        runs = timer.play(
            clock,
            period,
            lambda: watch(runtime, responder, now=night.at(clock.now())),
            done,
        )
        latencies = sorted(responder.incidents[j] - end for j, end in night.ends.items())
        elapsed = runs[-1][1]
        reads = len(sim.calls_to(method="GET"))
        cuts = statistics.quantiles(latencies, n=20)
        return {
            "schedule": settings.watch_schedule,
            "period": period,
            "p50": statistics.median(latencies),
            "p95": cuts[18],
            "max": latencies[-1],
            "jobs": len(latencies),
            "runs": len(runs),
            "longest_run": max(end - start for start, end, _ in runs),
            "reads": reads,
            "reads_per_second": reads / elapsed,
            "list_calls": len(sim.calls_to(route="job_list")),
            "detail_reads": len(sim.calls_to(route="job_get")),
            "vault_list_calls": len(sim.calls_to(route="vault_list")),
            "elapsed": elapsed,
        }


def run(vaults: int = 1_000, jobs: int = 300, window_minutes: float = 20) -> list[Row]:
    new = measure(vaults, jobs, window_minutes)
    old = measure(vaults, jobs, window_minutes, OLD_SCHEDULE)
    period = new["period"]
    per_run = vaults + new["vault_list_calls"] / new["runs"]
    arithmetic = per_run / period
    latency = Row(
        name=f"detection: job end → incident, {vaults:,} vaults, p50",
        figure=new["p50"] / 60,
        baseline=old["p50"] / 60,
        unit="min",
        target=f"p50 ≤ {TARGET_P50_SECONDS // 60} min",
        passed=new["p50"] <= TARGET_P50_SECONDS,
        note=(
            f"p95 {new['p95'] / 60:.1f} min (baseline {old['p95'] / 60:.1f}), max "
            f"{new['max'] / 60:.1f}; {new['jobs']} failed jobs ending at random over "
            f"{window_minutes:.0f} min in {vaults:,} vaults; schedule {new['schedule']!r}, "
            f"{new['runs']} runs, the longest {new['longest_run']:.0f} s; baseline: the same "
            f"night on {OLD_SCHEDULE!r} ({old['runs']} runs); simulated clock (work in real "
            f"time, waits skipped), Event Grid's delivery not added"
        ),
    )
    reads = Row(
        name=f"detection: ARM reads per second, {vaults:,} vaults",
        figure=new["reads_per_second"],
        baseline=float(ARM_READS_PER_SECOND),
        unit="reads/s",
        target=f"< {ARM_READS_PER_SECOND}/s (ARM's refill)",
        passed=new["reads_per_second"] < ARM_READS_PER_SECOND,
        note=(
            f"{new['reads']:,} reads at the simulator over {new['elapsed'] / 60:.0f} simulated "
            f"min: {new['list_calls']:,} job lists (one per vault per run), "
            f"{new['vault_list_calls']} vault list pages, {new['detail_reads']} detail reads; "
            f"arithmetic: ({vaults:,} + {per_run - vaults:.0f}) reads per {period:.0f} s run = "
            f"{arithmetic:.1f}/s plus one read per failed job; the old schedule read "
            f"{old['reads_per_second']:.1f}/s"
        ),
    )
    return [latency, reads]
