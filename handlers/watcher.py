"""The job watcher: our own event source, since Azure Backup publishes no events.

Every run lists the Recovery Services vaults of each configured subscription, lists each
vault's failed Azure VM jobs, reads each job's details and publishes one
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

from azure.core.exceptions import ResourceNotFoundError

from handlers.azure_ops import FILTER_TIME, AzureCallError, call, call_list
from handlers.events import EVENT_TYPE
from handlers.keys import safe_key
from handlers.runtime import Runtime
from handlers.store import CHECKPOINTS

log = logging.getLogger("backup_responder.watcher")
CHECKPOINT_ROW = "watcher"
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


def _vault_parts(vault_id: str) -> tuple[str, str]:
    parts = vault_id.strip("/").split("/")
    return parts[3], parts[7]  # resource group, name


class Checkpoints:
    """Latest published job end time per vault."""

    def __init__(self, runtime: Runtime) -> None:
        self._table = runtime.store.table(CHECKPOINTS)

    def get(self, vault_id: str) -> datetime | None:
        try:
            return self._table.get_entity(safe_key(vault_id), CHECKPOINT_ROW)["LastEndTime"]
        except ResourceNotFoundError:
            return None

    def set(self, vault_id: str, moment: datetime) -> None:
        self._table.upsert_entity(
            {
                "PartitionKey": safe_key(vault_id),
                "RowKey": CHECKPOINT_ROW,
                "LastEndTime": moment,
                "VaultId": vault_id,
            }
        )


def _failed_jobs(backup: Any, vault_id: str, since: datetime, until: datetime) -> list[Any]:
    group, name = _vault_parts(vault_id)
    query = (
        "status eq 'Failed' and backupManagementType eq 'AzureIaasVM' and "
        f"startTime eq '{since:{FILTER_TIME}}' and endTime eq '{until:{FILTER_TIME}}'"
    )
    return call_list(backup.backup_jobs.list, name, group, filter=query)


def _end(job: Any) -> datetime:
    return job.properties.end_time or job.properties.start_time or datetime.min.replace(tzinfo=UTC)


def _event(vault_id: str, details: Any) -> Any:
    from azure.core.messaging import CloudEvent

    return CloudEvent(
        source=vault_id,
        type=EVENT_TYPE,
        subject=f"backupJobs/{details.name}",
        data=details.as_dict(),
        datacontenttype="application/json",
    )


def _watch_vault(
    runtime: Runtime, sink: Publisher, vault_id: str, budget: int, now: datetime
) -> tuple[int, bool]:
    """Publish the vault's new failed jobs; returns (published, more left)."""
    checkpoints = Checkpoints(runtime)
    subscription = vault_id.strip("/").split("/")[1]
    backup = runtime.clients.backup(subscription)
    group, name = _vault_parts(vault_id)
    lookback = timedelta(hours=runtime.settings.watch_lookback_hours)
    mark = checkpoints.get(vault_id)
    since = (mark or now) - lookback
    jobs = sorted(
        (j for j in _failed_jobs(backup, vault_id, since, now) if mark is None or _end(j) > mark),
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
        details = list(
            pool.map(lambda job: call(backup.job_details.get, name, group, job.name), chosen)
        )
    events = [_event(vault_id, job) for job in details]
    for start in range(0, len(events), PUBLISH_BATCH):
        call(sink.send, events[start : start + PUBLISH_BATCH])
    checkpoints.set(vault_id, _end(chosen[-1]))
    return len(chosen), len(jobs) > len(chosen)


def _vault_ids(runtime: Runtime, subscription: str) -> list[str]:
    vaults = runtime.clients.vaults(subscription).vaults
    return [v.id for v in call_list(vaults.list_by_subscription_id)]


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
    for subscription in sorted(runtime.settings.subscription_ids):
        try:
            vault_ids = _vault_ids(runtime, subscription)
        except AzureCallError as error:
            report.errors[f"/subscriptions/{subscription}"] = str(error)
            log.error("cannot list vaults of subscription %s: %s", subscription, error)
            continue
        for vault_id in vault_ids:
            if budget <= 0:
                report.deferred = True
                break
            try:
                count, more = _watch_vault(runtime, sink, vault_id, budget, now)
            except Exception as error:  # one vault never stops the others
                report.errors[vault_id] = f"{type(error).__name__}: {error}"[:500]
                log.error("vault %s skipped: %s", vault_id, report.errors[vault_id])
                continue
            report.published[vault_id] = count
            report.deferred |= more
            budget -= count
    log.info("watcher published %d event(s), %d vault error(s)", report.total, len(report.errors))
    return report
