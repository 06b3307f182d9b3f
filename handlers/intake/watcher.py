"""The job watcher: our own event source, since Azure Backup publishes no events.

Every run lists the Recovery Services vaults of each configured subscription, lists each
vault's failed jobs of Azure VMs, SQL and SAP HANA in Azure VMs and Azure Files (one listing),
reads each job's details and publishes one
``BackupResponder.BackupJobFailed`` CloudEvent per job to our Event Grid topic.

Per vault, a checkpoint (``checkpoints`` table) holds the latest job end time published.
The query looks back ``WATCH_LOOKBACK_HOURS`` before it (a long job that started before the
checkpoint and failed after it is still found) and skips jobs that ended at or before it.
The checkpoint moves only after every batch of the vault is published: delivery is at least
once, and the spine's dedup absorbs repeats. A vault that fails is logged and skipped; the
run goes on. Work per run is bounded by ``WATCH_MAX_JOBS_PER_RUN``; the rest waits for the
next run. Job details are read a few at a time in parallel; events go out in batches.
"""

from __future__ import annotations

import logging
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
#: Job-detail reads in flight at once per vault: faster absorption of an outage, still far
#: below ARM's read throttling limits.
DETAIL_READERS = 8
#: Events per publish request: a job with its error details is a few KB, and Event Grid takes
#: at most 1 MB per request.
PUBLISH_BATCH = 100


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


def _event(vault: VaultRef, details: Any) -> Any:
    from azure.core.messaging import CloudEvent

    return CloudEvent(
        source=vault.id,
        type=EVENT_TYPE,
        subject=f"backupJobs/{details.name}",
        data=details.as_dict(),
        datacontenttype="application/json",
    )


def _watch_vault(
    runtime: Runtime, sink: Publisher, vault: VaultRef, budget: int, now: datetime
) -> tuple[int, bool]:
    """Publish the vault's new failed jobs; returns (published, more left)."""
    checkpoints = runtime.storage.checkpoints
    api = VaultApi(runtime.clients, vault)
    lookback = timedelta(hours=runtime.settings.watch_lookback_hours)
    mark = checkpoints.get(vault.id)
    since = (mark or now) - lookback
    jobs = sorted(
        (j for j in api.failed_jobs(since, now) if mark is None or _end(j) > mark),
        key=_end,
    )
    chosen = jobs[:budget]
    if not chosen:
        return 0, False
    # Jobs that ended at the same moment as the last one chosen go with it: the checkpoint
    # becomes that moment, and later runs skip every job that ended at or before it.
    while len(chosen) < len(jobs) and _end(jobs[len(chosen)]) == _end(chosen[-1]):
        chosen.append(jobs[len(chosen)])
    with ThreadPoolExecutor(max_workers=DETAIL_READERS) as pool:
        details = list(pool.map(lambda job: api.job_details(job.name), chosen))
    events = [_event(vault, job) for job in details]
    for start in range(0, len(events), PUBLISH_BATCH):
        call(sink.send, events[start : start + PUBLISH_BATCH])
    checkpoints.set(vault.id, _end(chosen[-1]))
    return len(chosen), len(jobs) > len(chosen)


def watch(
    runtime: Runtime, sink: Publisher | None = None, now: datetime | None = None
) -> WatchReport:
    """One watcher run over every vault of every configured subscription."""
    sink = sink or publisher(runtime)
    now = now or datetime.now(UTC)
    report = WatchReport()
    budget = runtime.settings.watch_max_jobs
    if not runtime.settings.subscription_ids:
        log.warning("SUBSCRIPTION_IDS is empty: the watcher has no subscription to watch")
    checkpoints = runtime.storage.checkpoints
    for subscription in sorted(runtime.settings.subscription_ids):
        try:
            vaults = vault_refs(runtime.clients, subscription)
        except AzureCallError as error:
            report.errors[f"/subscriptions/{subscription}"] = str(error)
            log.error("cannot list vaults of subscription %s: %s", subscription, error)
            checkpoints.record_poll(f"/subscriptions/{subscription}", now, str(error) or "error")
            continue
        for vault in vaults:
            if budget <= 0:
                report.deferred = True
                break
            try:
                count, more = _watch_vault(runtime, sink, vault, budget, now)
            except Exception as error:  # one vault never stops the others
                report.errors[vault.id] = f"{type(error).__name__}: {error}"[:500]
                log.error("vault %s skipped: %s", vault.id, report.errors[vault.id])
                checkpoints.record_poll(vault.id, now, report.errors[vault.id])
                continue
            checkpoints.record_poll(vault.id, now)
            report.published[vault.id] = count
            report.deferred |= more
            budget -= count
    checkpoints.record_run(
        now,
        runtime.clock(),
        Published=report.total,
        VaultErrors=len(report.errors),
        Deferred=report.deferred,
    )
    log.info("watcher published %d event(s), %d vault error(s)", report.total, len(report.errors))
    return report
