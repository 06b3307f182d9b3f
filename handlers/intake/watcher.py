"""The job watcher: our own event source, since Azure Backup publishes no events.

Every run lists the Recovery Services vaults of each configured subscription, lists each
vault's failed jobs of Azure VMs, SQL and SAP HANA in Azure VMs and Azure Files (one listing),
reads each job's details and publishes one
``BackupResponder.BackupJobFailed`` CloudEvent per job to our Event Grid topic.

Per vault, a checkpoint (``checkpoints`` table) holds the latest job end time published.
The query looks back ``WATCH_LOOKBACK_HOURS`` before it (a long job that started before the
checkpoint and failed after it is still found; one that started longer ago is not) and skips
jobs that ended at or before it. Azure lists jobs by their *start* time, so a listing covers
jobs that started up to the moment it is sent plus :data:`CLOCK_SKEW`, and only jobs that
ended within that window are published: the checkpoint never passes what the listing
covered, so a job that ended before the checkpoint had started before it and was listed.
A vault's new jobs are read and published in chunks, oldest end time first, and the
checkpoint moves after each chunk is published: what a run did before it ran out of time or
died is kept, and delivery stays at least once (the spine's dedup absorbs repeats). Jobs that
ended at the same moment always share a chunk, since the checkpoint is a moment.

Work per run is bounded by time, not by a count: a run stops starting chunks (and vaults)
once ``WATCH_TIME_BUDGET_SECONDS`` have passed, and says so (``deferred``); the rest waits
for the next run, which the Functions host starts at once when a run overran its schedule.
How fast a run goes is set by ARM's read refill rate, which every read of the Azure layer is
paced under (:mod:`handlers.azure.pacing`): vaults are listed and job details read a few at
a time in parallel, enough to keep the pace whatever ARM's latency, never faster. A vault that
fails is logged, recorded for health and skipped; the run goes on.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from handlers.azure.backup import VaultApi, vault_refs
from handlers.azure.errors import AzureCallError, call
from handlers.core.ids import VaultRef
from handlers.intake.events import EVENT_TYPE
from handlers.pipeline.runtime import Runtime

log = logging.getLogger("backup_responder.watcher")
#: Job-detail reads in flight at once (all vaults together): enough to keep ARM's pace
#: (about 25 reads a second) at up to 600 ms a read; the pacer, not this, sets the rate.
DETAIL_READERS = 16
#: Vaults listed and worked on at once: listing 1,000 vaults keeps the pace at up to 330 ms a
#: list call.
VAULT_WORKERS = 8
#: Events per publish request: a job with its error details is a few KB, and Event Grid takes
#: at most 1 MB per request.
PUBLISH_BATCH = 100
#: Jobs read and published per chunk, after which the vault's checkpoint moves (more when
#: jobs that ended at the same moment straddle the boundary).
CHUNK = PUBLISH_BATCH
#: How far Azure's clock may run ahead of ours: a listing asks for jobs that started up to this
#: long after the moment it is sent, so a job Azure stamped in our future is published now. A
#: job that ended later still is not lost: it waits for the listing that covers it.
CLOCK_SKEW = timedelta(minutes=5)


class Publisher(Protocol):
    """What the watcher needs of ``EventGridPublisherClient``."""

    def send(self, events: list[Any]) -> None: ...


def publisher(runtime: Runtime) -> Publisher:
    """The topic publisher: the managed identity in Azure, the key only for local testing."""
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridPublisherClient

    settings = runtime.settings
    if settings.eventgrid_key:
        credential: Any = AzureKeyCredential(settings.eventgrid_key)
    else:
        credential = runtime.clients.credential
    return EventGridPublisherClient(settings.eventgrid_endpoint, credential)


@dataclass
class WatchReport:
    """What one run did, per vault."""

    published: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    deferred: bool = False

    @property
    def total(self) -> int:
        return sum(self.published.values())


def _end(job: Any) -> datetime:
    return job.properties.end_time or job.properties.start_time or datetime.min.replace(tzinfo=UTC)


def _event(vault: VaultRef, details: dict[str, Any]) -> Any:
    from azure.core.messaging import CloudEvent

    return CloudEvent(
        source=vault.id,
        type=EVENT_TYPE,
        subject=f"backupJobs/{details.get('name', '')}",
        data=details,
        datacontenttype="application/json",
    )


def chunks(jobs: list[Any], size: int = CHUNK) -> list[list[Any]]:
    """``jobs`` (sorted by end time) cut into chunks of about ``size``; jobs that ended at the
    same moment are never cut apart, so a checkpoint at a chunk's last end time leaves none
    of them behind."""
    cut, start = [], 0
    while start < len(jobs):
        end = min(start + size, len(jobs))
        while end < len(jobs) and _end(jobs[end]) == _end(jobs[end - 1]):
            end += 1
        cut.append(jobs[start:end])
        start = end
    return cut


@dataclass
class _Run:
    """One run's shared state: its deadline, the detail readers, what it published."""

    runtime: Runtime
    sink: Publisher
    now: datetime
    #: The pacing clock's reading at ``now``: what the run has taken is measured from it.
    started: float
    deadline: float
    readers: ThreadPoolExecutor
    report: WatchReport = field(default_factory=WatchReport)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def out_of_time(self) -> bool:
        return self.runtime.clients.clock.now() >= self.deadline

    def moment(self) -> datetime:
        """The time now: the run's start plus the time it has taken (on the pacing clock, so a
        simulated run's listings move with it)."""
        return self.now + timedelta(seconds=self.runtime.clients.clock.now() - self.started)

    def published(self, vault: VaultRef, count: int) -> None:
        with self.lock:
            self.report.published[vault.id] = self.report.published.get(vault.id, 0) + count

    def deferred(self) -> None:
        with self.lock:
            self.report.deferred = True


def _watch_vault(run: _Run, vault: VaultRef) -> bool:
    """Publish the vault's new failed jobs, chunk by chunk, moving its checkpoint after each;
    False when the run ran out of time before the vault was done."""
    if run.out_of_time():
        return False
    checkpoints = run.runtime.storage.checkpoints
    api = VaultApi(run.runtime.clients, vault)
    lookback = timedelta(hours=run.runtime.settings.watch_lookback_hours)
    mark = checkpoints.get(vault.id)
    since = (mark or run.now) - lookback
    until = run.moment() + CLOCK_SKEW
    jobs = sorted(
        (
            j
            for j in api.failed_jobs(since, until)
            if (mark is None or _end(j) > mark) and _end(j) <= until
        ),
        key=_end,
    )
    run.published(vault, 0)
    for chunk in chunks(jobs):
        if run.out_of_time():
            return False
        details = list(run.readers.map(lambda job: _details(run, api, job), chunk))
        read = _whole_prefix(chunk, details)
        if read:
            events = [_event(vault, job) for job in details[:read]]
            for start in range(0, len(events), PUBLISH_BATCH):
                call(run.sink.send, events[start : start + PUBLISH_BATCH])
            checkpoints.set(vault.id, _end(chunk[read - 1]))
            run.published(vault, read)
        if read < len(chunk):  # the run ran out of time in the middle of the chunk
            return False
    return True


def _details(run: _Run, api: VaultApi, job: Any) -> dict[str, Any] | None:
    """The job's details, or None when the run is out of time before they are read: a run
    ends within a few reads of its budget, not a chunk per vault later."""
    if run.out_of_time():
        return None
    return api.job_details_json(job.name)


def _whole_prefix(chunk: list[Any], details: list[Any]) -> int:
    """How many jobs from the chunk's start can be published: those read, in order, short of
    any that ended at the same moment as the first one not read (the checkpoint is a moment:
    every job that ended at it must be published with it)."""
    read = next((i for i, found in enumerate(details) if found is None), len(details))
    if read == len(chunk):
        return read
    while read and _end(chunk[read - 1]) == _end(chunk[read]):
        read -= 1
    return read


def _poll(run: _Run, vault: VaultRef) -> None:
    """One vault's poll, recorded for health when it failed or was done (a vault the run left
    for lack of time keeps its older poll, so it is first in line next time); its failure
    stays its own."""
    checkpoints = run.runtime.storage.checkpoints
    try:
        done = _watch_vault(run, vault)
    except Exception as error:  # one vault never stops the others
        message = f"{type(error).__name__}: {error}"[:500]
        with run.lock:
            run.report.errors[vault.id] = message
        log.error("vault %s skipped: %s", vault.id, message)
        checkpoints.record_poll(vault.id, run.now, message)
        return
    if done:
        checkpoints.record_poll(vault.id, run.now)
    else:
        run.deferred()


def _longest_waiting(run: _Run, vaults: list[VaultRef]) -> list[VaultRef]:
    """The vaults, those polled longest ago first (never polled before all): a run that runs
    out of time before it reaches every vault leaves the others first in line for the next."""
    last = {p["VaultId"]: p["LastPollAt"] for p in run.runtime.storage.checkpoints.polls()}
    never = datetime.min.replace(tzinfo=UTC)
    return sorted(vaults, key=lambda vault: last.get(vault.id) or never)


def watch(
    runtime: Runtime, sink: Publisher | None = None, now: datetime | None = None
) -> WatchReport:
    """One watcher run over every vault of every configured subscription, within
    ``WATCH_TIME_BUDGET_SECONDS``."""
    sink = sink or publisher(runtime)
    now = now or datetime.now(UTC)
    started = runtime.clients.clock.now()
    deadline = started + runtime.settings.watch_time_budget_seconds
    if not runtime.settings.subscription_ids:
        log.warning("SUBSCRIPTION_IDS is empty: the watcher has no subscription to watch")
    checkpoints = runtime.storage.checkpoints
    with ThreadPoolExecutor(DETAIL_READERS) as readers:
        run = _Run(runtime, sink, now, started, deadline, readers)
        report = run.report
        vaults: list[VaultRef] = []
        for subscription in sorted(runtime.settings.subscription_ids):
            if run.out_of_time():
                report.deferred = True
                break
            scope = f"/subscriptions/{subscription}"
            try:
                vaults += vault_refs(runtime.clients, subscription)
            except AzureCallError as error:
                report.errors[scope] = str(error)
                log.error("cannot list vaults of subscription %s: %s", subscription, error)
                checkpoints.record_poll(scope, now, str(error) or "error")
            else:  # a listing that works again ends the subscription's run of failures
                checkpoints.record_poll(scope, now)
        with ThreadPoolExecutor(VAULT_WORKERS) as workers:
            list(workers.map(lambda vault: _poll(run, vault), _longest_waiting(run, vaults)))
    checkpoints.record_run(
        now,
        runtime.clock(),
        Published=report.total,
        VaultErrors=len(report.errors),
        Deferred=report.deferred,
    )
    log.info(
        "watcher published %d event(s), %d vault error(s)%s",
        report.total,
        len(report.errors),
        ", work left for the next run" if report.deferred else "",
    )
    return report
