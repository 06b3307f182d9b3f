"""Burst: a regional storage outage fails 10,000 backup jobs at once.

**Absorb** (a child process, so that its peak RSS is the app's alone). The parent seeds the
simulator with the failed jobs (one per VM, across 20 vaults) and runs Azurite. The child is
the Function App's ``on_backup_failure`` side: a local topic endpoint that, like Event Grid,
pushes every event to worker threads that run ``respond()`` in dry run (one in 50 events is
delivered twice, as Event Grid may). The watcher runs in a process of its own, started by the
child: on the Flex Consumption plan (what ``infra/`` deploys) functions scale per function,
and a timer function such as ``watch`` gets instances of its own, apart from the Event Grid
trigger's (Microsoft Learn: "Flex Consumption plan hosting" and "Event-driven scaling", both
under "Per-function scaling"), so in Azure the two do not share a process or its GIL. There
``handlers.intake.watcher.watch`` runs as the Functions host's timer would run it on the
default ``WATCH_SCHEDULE`` (:mod:`bench.timer`: a run that overran its interval is followed at
once), with the default time budget and ARM read pacing, and publishes over HTTP through the
real ``EventGridPublisherClient`` to the child's topic endpoint; it reports its runs back to
the child as JSON.

Two clocks. The watcher's pacing, ``Retry-After`` waits, time budget and the gaps between
timer runs are on a :class:`sandbox.clock.SkippingClock` in the watcher's process: real time
plus every wait skipped, so real work counts in full and only waiting is skipped. The
**publication time** (first run's start to the last batch published) is read on it, against
ARM's floor (one detail read per job at 25 reads a second). The **absorption rate** is real:
events handled per real second, from the first watcher run's start to the last event handled
(wall-clock time, across the two processes), against the same table writes sent straight
through the same client by the same threads (the baseline). ARM calls are counted on the wire,
at the simulator. Then the child checks the tables (one incident per job, every claim
``done``) and reads its peak RSS (``VmHWM``); the watcher's process reports its own.

**Staggering** (this process, a smaller set: 200 retry incidents across 4 vaults, and
``DRY_RUN=false``). Retries go through ``run_retry`` against the simulator, with the
ETag-guarded counters in Azurite, 4 at a time. The clock (of the retry action and of the
simulator) and the retry queue's delays are simulated, so that ten 15-minute windows pass in
seconds: a message the app delays by *d* is handled when the simulated clock reaches now + *d*.
The figure is the most backups started in one vault within one window, read from the start
times of the jobs the simulator created.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from bench import timer, world
from bench.common import ROOT, Row, peak_rss_mib, rss_mib
from bench.timer import period_seconds
from sandbox.azurite import Azurite
from sandbox.clock import SkippingClock
from sandbox.simulator import AzureSimulator

if TYPE_CHECKING:
    from handlers.core.settings import Settings

MEMORY_TARGET_MB = 150
PREFIX = "burst"
TOPIC_KEY = "bench-topic-key"
REDELIVER_EVERY = 50
#: What a regional storage outage looks like in the job errors.
OUTAGE_ERRORS: list[tuple[int | str, str]] = [
    (400234, "Copying backed up data from vault timed out"),
    ("UserErrorStorageAccountNotReachable", "The storage account could not be reached."),
    ("ExtensionSnapshotFailedNoNetwork", "Snapshot operation failed due to no network."),
]


# -- the parent: seeds Azure, runs the child, then the staggering part ----------------------


def seed_outage(sim: AzureSimulator, jobs: int, vaults: int, at: datetime) -> set[str]:
    """One protected VM per job, each with one failed backup job; returns the job names."""
    names = set()
    errors = itertools.cycle(OUTAGE_ERRORS)
    vault_ids = [
        sim.add_vault(world.SUB, world.VAULT_RG, f"rsv-{v:02d}")["id"] for v in range(vaults)
    ]
    for i in range(jobs):
        vault = vault_ids[i % vaults]
        vm = sim.add_vm(world.SUB, f"rg-app-{i % 7}", f"vm-{i:05d}")
        sim.protect_vm(vault, vm["id"])
        code, message = next(errors)
        start = at + timedelta(microseconds=i * 1_000)  # a few seconds apart, all within minutes
        job = sim.add_job(
            vault,
            vm_name=vm["name"],
            vm_resource_group=f"rg-app-{i % 7}",
            error_code=code,  # type: ignore[arg-type]
            error_string=message,
            start_time=start,
            end_time=start + timedelta(minutes=20),
        )
        names.add(job["name"])
    return names


def absorb(jobs: int, vaults: int, workers: int) -> dict[str, Any]:
    """Seed the outage, run the child, return its report (with the parent's API counts)."""
    with Azurite() as azurite, AzureSimulator() as sim:
        seeded = time.perf_counter()
        names = seed_outage(sim, jobs, vaults, datetime.now(UTC) - timedelta(hours=2))
        seed_seconds = time.perf_counter() - seeded
        config = {
            "connection": azurite.connection_string,
            "management_url": sim.base_url,
            "ca_bundle": sim.ca_pem_path,
            "jobs": sorted(names),
            "workers": workers,
        }
        report = _run_process("--child", config)
        report["seed_seconds"] = seed_seconds
        report["job_gets"] = len(sim.calls_to(route="job_get"))
        report["job_list_pages"] = len(sim.calls_to(route="job_list"))
        report["management_writes"] = len([c for c in sim.calls if c.method != "GET"])
        report["arm_calls"] = len(sim.calls)
        report["vault_lists"] = len(sim.calls_to(route="vault_list"))
        return report


def _run_process(role: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m bench.burst <role>`` with ``config`` as JSON on its stdin; its report
    is the last line of its stdout."""
    process = subprocess.run(
        [sys.executable, "-m", "bench.burst", role],
        input=json.dumps(config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(f"the burst's {role} process failed:\n{process.stderr[-4000:]}")
    return json.loads(process.stdout.strip().splitlines()[-1])


def _settings(config: dict[str, Any]) -> Settings:
    """The app's settings, in both processes: dry run, the simulator, the child's topic."""
    from handlers.core.settings import Settings

    return Settings(
        storage_connection=config["connection"],
        table_name_prefix=PREFIX,
        dry_run=True,
        subscription_ids=frozenset({world.SUB}),
        management_url=config["management_url"],
        ca_bundle=config["ca_bundle"],
        static_token=world.TOKEN,
        eventgrid_endpoint=config["topic"],
        eventgrid_key=TOPIC_KEY,
    )


# -- the watcher's process: the ``watch`` timer function ---------------------------------


class _Watcher:
    """``watch`` on its timer, on a skipping clock, publishing to the child's topic; notes
    when its first run started (wall clock) and when it last published (skipping clock)."""

    def __init__(self, config: dict[str, Any]) -> None:
        from bench.pipeline import RequestLog, instrumented

        self.clock = SkippingClock()
        self.log = RequestLog(PREFIX)
        self.log.keep = False
        self.runtime, _ = instrumented(_settings(config), self.log, self.clock.pace())
        self.log.count = 0  # the burst's table requests only, as in the child
        self.started_at = 0.0
        self.last_publish = 0.0
        self.watch_seconds = 0.0
        self._publisher: Any = None
        self._lock = threading.Lock()

    def send(self, events: list[Any]) -> None:
        """What ``watch`` publishes through: the real client, the moment noted."""
        self._publisher.send(events)
        with self._lock:
            self.last_publish = max(self.last_publish, self.clock.now())

    def _run(self) -> Any:
        """One invocation of the timer function."""
        from handlers.intake.watcher import publisher, watch

        self.started_at = self.started_at or time.time()
        at = time.perf_counter()
        self._publisher = publisher(self.runtime)
        report = watch(self.runtime, self)
        self.watch_seconds += time.perf_counter() - at
        if report.errors:
            raise RuntimeError(f"watcher errors: {report.errors}")
        return report

    def play(self) -> dict[str, Any]:
        """Runs on the default schedule until nothing is left; what they did."""
        period = period_seconds(self.runtime.settings.watch_schedule)
        runs = timer.play(self.clock, period, self._run, lambda report: not report.deferred)
        pacers = self.runtime.clients._pacers.values()
        return {
            "started_at": self.started_at,
            "watch_runs": len(runs),
            "run_seconds": [round(end - begin, 1) for begin, end, _ in runs],
            "run_published": [report.total for _, _, report in runs],
            "gaps": [round(b[0] - a[1], 1) for a, b in itertools.pairwise(runs)],
            # Timed from the first run: the next timer occurrence after the outage.
            "publication_seconds": self.last_publish - runs[0][0],
            "paced_wait_seconds": sum(p.waited for p in pacers),
            "watch_seconds": self.watch_seconds,
            "schedule_seconds": period,
            "watcher_table_requests": self.log.count,
            "watcher_peak_rss_mib": peak_rss_mib(),
        }


# -- the child: the Function App under a burst ---------------------------------------------


class _Topic(BaseHTTPRequestHandler):
    """Our Event Grid topic, locally: takes CloudEvents batches, pushes each event to the
    subscribers' queue (one in ``REDELIVER_EVERY`` twice, as Event Grid may)."""

    deliveries: queue.Queue[Any]
    received = itertools.count()
    redelivered: list[int] = [0]  # noqa: RUF012 (one run per process)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("aeg-sas-key") != TOPIC_KEY or not isinstance(body, list):
            self.send_response(401)
            self.end_headers()
            return
        for event in body:
            self.deliveries.put(event)
            if next(self.received) % REDELIVER_EVERY == REDELIVER_EVERY - 1:
                self.deliveries.put(event)
                self.redelivered[0] += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


class _App:
    """The Function App in the child process: the runtime, the topic's subscribers."""

    def __init__(self, config: dict[str, Any]) -> None:
        from bench.pipeline import RequestLog, instrumented

        self.topic = ThreadingHTTPServer(("127.0.0.1", 0), _Topic)
        _Topic.deliveries = queue.Queue()
        threading.Thread(target=self.topic.serve_forever, daemon=True).start()
        endpoint = f"http://127.0.0.1:{self.topic.server_address[1]}/api/events"
        self.config = {**config, "topic": endpoint}
        self.log = RequestLog(PREFIX)
        self.runtime, service = instrumented(_settings(self.config), self.log)
        self.table = lambda name: service.get_table_client(f"{PREFIX}{name}")
        self.outcomes: Counter[str] = Counter()
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def probe(self) -> Any:
        """One event that is not an outage job: warms everything up and shows the table
        requests of one new event, which the baseline replays."""
        from bench.pipeline import RawReplay
        from handlers.intake.events import parse
        from handlers.pipeline.respond import respond

        self.log.ops.clear()
        respond(self.runtime, parse(next(world.events(1))))
        sequence = list(self.log.ops)
        self.log.ops.clear()
        self.log.keep = False  # from now on only counted: the app's memory is measured
        self.log.count = 0
        samples = {
            op.table: dict(next(iter(self.table(op.table).list_entities()))) for op in sequence
        }
        return RawReplay(self.table, sequence, samples)

    def _subscriber(self) -> None:
        from handlers.intake.events import parse
        from handlers.pipeline.respond import respond
        from handlers.storage import DeliveryInFlightError

        while True:
            event = _Topic.deliveries.get()
            try:
                if event is None:
                    return
                outcome = respond(self.runtime, parse(event))
                with self._lock:
                    self.outcomes[outcome.kind] += 1
            except DeliveryInFlightError:  # the platform redelivers it later
                with self._lock:
                    self.outcomes["in_flight"] += 1
                time.sleep(0.01)
                _Topic.deliveries.put(event)
            except Exception as error:  # counted; the run fails on any
                with self._lock:
                    self.errors.append(f"{type(error).__name__}: {error}"[:300])
            finally:
                _Topic.deliveries.task_done()

    def absorb(self) -> dict[str, Any]:
        """The watcher's process runs until nothing is left, the subscribers handling the
        events; its report, with the real seconds from its first run to the last event
        handled."""
        threads = [threading.Thread(target=self._subscriber) for _ in range(self.config["workers"])]
        for thread in threads:
            thread.start()
        watcher = _run_process("--watcher", self.config)
        _Topic.deliveries.join()
        absorbed = time.time() - watcher["started_at"]
        for _ in threads:
            _Topic.deliveries.put(None)
        for thread in threads:
            thread.join()
        return {**watcher, "absorb_seconds": absorbed}

    def verify(self) -> dict[str, Any]:
        """What the tables hold now: incidents per outage job, claims by state."""
        from handlers.core.outcome import OutcomeKind

        expected = set(self.config["jobs"])
        incidents = Counter(
            e["JobId"]
            for e in self.table("incidents").list_entities(select=["JobId"])
            if e["JobId"] in expected
        )
        claims = Counter(e["State"] for e in self.table("jobs").list_entities(select=["State"]))
        published = next(_Topic.received)
        return {
            "jobs": len(expected),
            "published": published,
            "redelivered": _Topic.redelivered[0],
            "outcomes": dict(self.outcomes),
            "new": self.outcomes[OutcomeKind.NEW],
            "duplicates_seen": self.outcomes[OutcomeKind.DUPLICATE],
            "incidents": sum(incidents.values()),
            "jobs_with_one_incident": sum(1 for n in incidents.values() if n == 1),
            "claims": dict(claims),
            "errors": self.errors[:5],
            "error_count": len(self.errors),
            "table_requests": self.log.count,
        }


def _raw_rate(replay: Any, events: int, workers: int) -> float:
    """Events/s of the baseline: the replayed table requests, ``workers`` threads."""
    per_thread = events // workers
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(lambda _: [replay.one() for _ in range(per_thread)], range(workers)):
            pass
    return per_thread * workers / (time.perf_counter() - start)


def _child(config: dict[str, Any]) -> dict[str, Any]:
    app = _App(config)
    replay = app.probe()
    idle_mib = rss_mib()
    timing = app.absorb()
    peak_mib = peak_rss_mib()
    app.log.enabled = False
    report = app.verify()
    return {
        **report,
        **timing,
        "idle_rss_mib": idle_mib,
        "peak_rss_mib": peak_mib,
        "raw_events_per_s": _raw_rate(replay, report["jobs"], config["workers"]),
        "sequence": [f"{op.method} {op.table}" for op in replay.sequence],
        "workers": config["workers"],
    }


# -- staggering ---------------------------------------------------------------------------


class _Clock:
    """The simulated time of the runtime (what the retry action reads) and of the
    simulator."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now


class _RetryQueue:
    """The retry queue as the Functions host plays it: a message the app delays by *d* is
    handled when the clock reaches now + *d*; messages due together run 4 at a time."""

    def __init__(self, clock: _Clock) -> None:
        self._clock = clock
        self._pending: list[tuple[datetime, int, str]] = []
        self._order = itertools.count()
        self.handled = 0

    def enqueue(self, _queue: Any, message: Any, delay: timedelta, _scale: float) -> None:
        with self._clock.lock:
            due = self._clock.now + delay
            order = next(self._order)
            heapq.heappush(self._pending, (due, order, (message.to_json(), f"q{order}")))

    def drain(self, runtime: Any) -> None:
        from handlers.intake.retry_queue import run_retry

        with ThreadPoolExecutor(4) as pool:
            while self._pending:
                with self._clock.lock:
                    self._clock.now = max(self._clock.now, self._pending[0][0])
                    due = []
                    while self._pending and self._pending[0][0] <= self._clock.now:
                        due.append(heapq.heappop(self._pending)[2])
                for _ in pool.map(lambda sent: run_retry(runtime, *sent[:1], 1, sent[1]), due):
                    self.handled += 1


def _retry_incidents(sim: AzureSimulator, runtime: Any, count: int, vaults: int) -> None:
    """``count`` protected VMs across ``vaults`` vaults, each with a failed job that the
    rules retry, each delivered once (the retry is scheduled)."""
    from handlers.intake.events import parse
    from handlers.pipeline.respond import respond

    vault_ids = [
        sim.add_vault(world.SUB, world.VAULT_RG, f"rsv-stagger-{v}")["id"] for v in range(vaults)
    ]
    for i in range(count):
        vault = vault_ids[i % vaults]
        vm = sim.add_vm(world.SUB, "rg-app", f"vm-stagger-{i:03d}")
        sim.protect_vm(vault, vm["id"])
        failed_at = sim.clock() - timedelta(hours=2) + timedelta(seconds=i)
        job = sim.add_job(
            vault,
            vm_name=vm["name"],
            vm_resource_group="rg-app",
            error_code=400234,
            error_string="Copying backed up data from vault timed out",
            start_time=failed_at,
            end_time=failed_at + timedelta(minutes=30),
        )
        event = world.cloud_event(job)
        event["source"] = vault
        respond(runtime, parse(event))


def _starts(sim: AzureSimulator, runtime: Any, start: datetime, window: timedelta) -> Counter:
    """Backups started per (vault, window), from the start times of the jobs the simulator
    made for the triggers the incidents recorded."""
    started: Counter[tuple[str, int]] = Counter()
    for incident in runtime.storage.incidents.query():
        for entry in incident.actions:
            if entry.action == "retry" and entry.state == "triggered":
                job = sim.get_job(incident.VaultId, entry.ref)
                at = datetime.fromisoformat(job["properties"]["startTime"])
                started[(incident.VaultName, (at - start) // window)] += 1
    return started


def _stagger_run(incidents: int, vaults: int, limit: int, minutes: int) -> dict[str, Any]:
    """The retries of ``incidents`` failures across ``vaults`` vaults through ``run_retry``,
    ``limit`` starts per vault per ``minutes`` window, on the simulated clock."""
    from handlers.actions import retry as retry_module
    from handlers.core.settings import Settings
    from handlers.pipeline.runtime import Runtime

    window = timedelta(minutes=minutes)
    hours_ago = (datetime.now(UTC) - timedelta(hours=8)).timestamp()
    start = datetime.fromtimestamp(
        hours_ago // window.total_seconds() * window.total_seconds(), UTC
    )
    clock = _Clock(start)
    retries = _RetryQueue(clock)
    saved = retry_module.enqueue
    retry_module.enqueue = retries.enqueue  # type: ignore[assignment]
    try:
        with Azurite() as azurite, AzureSimulator() as sim:
            sim.clock = clock
            sim.auto_complete_backups = "Completed"
            settings = Settings(
                storage_connection=azurite.connection_string,
                table_name_prefix="stagger",
                dry_run=False,
                management_url=sim.base_url,
                ca_bundle=sim.ca_pem_path,
                static_token=world.TOKEN,
                retry_stagger_limit=limit,
                retry_stagger_minutes=minutes,
                queue_delay_scale=0.0,  # no real sleeps; the delays go to _RetryQueue
            )
            # ARM pacing as in Azure, its waits skipped (the simulator is not ARM).
            runtime = dataclasses.replace(
                Runtime.from_settings(settings, {"polling_interval": 0}, SkippingClock().pace()),
                clock=clock,
            )
            _retry_incidents(sim, runtime, incidents, vaults)
            retries.drain(runtime)
            started = _starts(sim, runtime, start, window)
            resolved = sum(i.Status == "resolved" for i in runtime.storage.incidents.query())
            triggers = len(sim.calls_to(route="backup_trigger"))
    finally:
        retry_module.enqueue = saved
    return {
        "most": max(started.values()),
        "total": sum(started.values()),
        "windows": len({slot for _, slot in started}),
        "resolved": resolved,
        "triggers": triggers,
        "messages": retries.handled,
    }


def stagger(incidents: int = 200, vaults: int = 4, limit: int = 5, minutes: int = 15) -> list[Row]:
    """Retries of a burst, started at most ``limit`` per vault per ``minutes`` window, and the
    queue messages each retry costs (beside the same retries with no staggering to do)."""
    staggered = _stagger_run(incidents, vaults, limit, minutes)
    free = _stagger_run(incidents, vaults, incidents, minutes)
    complete = staggered["total"] == incidents == staggered["triggers"] == staggered["resolved"]
    per_retry = staggered["messages"] / incidents
    least = free["messages"] / incidents
    return [
        Row(
            name="burst: retries started per vault per window",
            figure=float(staggered["most"]),
            baseline=float(limit),
            unit="starts",
            target=f"≤ RETRY_STAGGER_LIMIT ({limit}) per {minutes} min",
            passed=staggered["most"] <= limit and complete,
            note=(
                f"{incidents} retry incidents across {vaults} vaults, DRY_RUN=false, 4 retries "
                f"at a time: {staggered['total']} backups started (one per incident, "
                f"{staggered['triggers']} trigger calls) over {staggered['windows']} windows, "
                f"{staggered['resolved']} incidents resolved, {staggered['messages']} queue "
                f"messages handled; the clock and the queue's delays are simulated"
            ),
        ),
        Row(
            name="retry: queue messages per retry",
            figure=per_retry,
            baseline=least,
            unit="messages",
            target="≤ 3",
            passed=per_retry <= 3 and complete and free["resolved"] == incidents,
            note=(
                f"the same {incidents} retries, {limit} starts per vault per window: "
                f"{staggered['messages']} messages (the scheduled retry, at most one wait for "
                f"the start slot it reserved, the follow-up); baseline: the same retries with "
                f"no staggering to do ({free['messages']} messages, one of each); every backup "
                f"started and verified once, each incident resolved"
            ),
        ),
    ]


# -- rows ---------------------------------------------------------------------------------

#: ARM's read refill rate per principal and subscription: the floor of an outage's reading.
ARM_READS_PER_SECOND = 25


def run(jobs: int = 10_000, vaults: int = 20, workers: int = 4) -> list[Row]:
    report = absorb(jobs, vaults, workers)
    rate = report["jobs"] / report["absorb_seconds"]
    requests = report["table_requests"] + report["watcher_table_requests"]
    exact = (
        report["incidents"] == report["jobs"] == report["jobs_with_one_incident"] == report["new"]
        and report["duplicates_seen"] == report["redelivered"]
        and report["claims"] == {"done": report["jobs"] + 1}
        and report["error_count"] == 0
        and report["management_writes"] == 0
    )
    ratio = rate / report["raw_events_per_s"]
    absorb_row = Row(
        name=f"burst: {report['jobs']:,} failed jobs, watcher → topic → respond()",
        figure=rate,
        baseline=report["raw_events_per_s"],
        unit="events/s",
        target="≥ 0.80 of the raw writes, every job once, 0 duplicates",
        passed=exact and ratio >= 0.8,
        note=(
            f"absorbed in {report['absorb_seconds']:.0f} real s ({vaults} vaults, {workers} "
            f"subscriber threads; the watcher in a process of its own, as Flex Consumption "
            f"scales it, busy {report['watch_seconds']:.0f} s of it, its ARM pacing skipped); "
            f"{report['published']:,} events published, "
            f"{report['redelivered']} delivered twice → {report['incidents']:,} incidents, "
            f"{report['duplicates_seen']} counted as repeats, 0 duplicates, "
            f"{report['error_count']} errors; {requests / max(report['published'], 1):.1f} table "
            f"requests per event over the burst (watcher checkpoints included); baseline: the "
            f"same {len(report['sequence'])} writes per event, same client and threads"
        ),
    )
    floor = report["jobs"] / ARM_READS_PER_SECOND
    publication = report["publication_seconds"]
    publication_row = Row(
        name=f"outage: {report['jobs']:,} failed jobs published to the topic",
        figure=publication,
        baseline=floor,
        unit="s",
        target="≤ 1.2 × ARM's floor",
        passed=exact and publication <= 1.2 * floor,
        note=(
            f"{report['watch_runs']} watcher runs on the {report['schedule_seconds'] / 60:.0f}-"
            f"minute schedule, each stopping at WATCH_TIME_BUDGET_SECONDS (runs of "
            f"{report['run_seconds']} s, gaps {report['gaps']} s: a run that overran its "
            f"interval is followed at once), {report['run_published']} jobs published per run; "
            f"reads paced at ARM_READS_PER_SECOND on a skipping clock: real work counted in "
            f"full, {report['paced_wait_seconds']:.0f} s of pacing waits skipped; baseline: "
            f"ARM's floor, one detail read per job at {ARM_READS_PER_SECOND} reads/s"
        ),
    )
    calls = report["arm_calls"] / report["jobs"]
    calls_row = Row(
        name="outage: ARM calls per failed job",
        figure=calls,
        baseline=1.0,
        unit="calls",
        target="≤ 1.1",
        passed=calls <= 1.1,
        note=(
            f"counted at the simulator: {report['arm_calls']:,} calls = "
            f"{report['vault_lists']} vault lists + {report['job_list_pages']:,} job list pages "
            f"+ {report['job_gets']:,} job detail reads, no writes; baseline: the one detail "
            f"read per job the event needs"
        ),
    )
    memory_row = Row(
        name="memory: peak RSS over the burst",
        figure=report["peak_rss_mib"],
        baseline=report["idle_rss_mib"],
        unit="MiB",
        target=f"< {MEMORY_TARGET_MB} MB",
        passed=report["peak_rss_mib"] * 1.048576 < MEMORY_TARGET_MB,
        note=(
            f"VmHWM of the app's process (the topic's subscribers, running respond()); the "
            f"watcher's own process peaked at {report['watcher_peak_rss_mib']:.0f} MiB; "
            f"baseline: the app's RSS once started, before the burst"
        ),
    )
    return [absorb_row, publication_row, calls_row, memory_row, *stagger()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--watcher", action="store_true")
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(sys.stdin.read()))))
        return
    if args.watcher:
        print(json.dumps(_Watcher(json.loads(sys.stdin.read())).play()))
        return
    from bench.common import table

    print(table(run(jobs=args.jobs)))


if __name__ == "__main__":
    main()
