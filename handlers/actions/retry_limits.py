"""The retry guard rails kept in storage counters: attempts per item per UTC day, and starts
per vault per stagger window (Microsoft advises staggering on-demand backups of many VMs);
and Azure's own daily limit of operations (the ``CloudDos…`` throttles), which a retry waits
out until the next UTC day instead of spending an attempt on it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from handlers.core.incident import Incident
from handlers.core.model import Workload
from handlers.core.settings import AZURE_ON_DEMAND_DAILY_LIMIT, Settings
from handlers.storage import Storage

#: On-demand backups per item per UTC day that Azure allows (VM: its hard limit; SQL and HANA:
#: the three on-demand backups of the support matrices; Azure Files: ten).
WORKLOAD_DAILY_LIMITS = {
    Workload.VM: AZURE_ON_DEMAND_DAILY_LIMIT,
    Workload.SQL: 3,
    Workload.HANA: 3,
    Workload.FILES: 10,
}


#: Azure's answers (a job's error, or a refused request) that the item has used up its
#: operations for the day: "Retry after 24 hours" (workloads.md, SQL and SAP HANA tables;
#: the simulator refuses the day's tenth on-demand backup with the first, an inference).
THROTTLE_CODES = frozenset(
    {"clouddosabsolutelimitreached", "clouddosabsolutelimitreachedwithretry"}
)
#: A retry deferred to the next UTC day starts this long after midnight, so that a clock a
#: little behind Azure's does not start it in the day that is over.
DAY_MARGIN = timedelta(minutes=5)


#: A job that ends with this code is retried by Azure itself once 24 hours have passed
#: (workloads.md: "the service retries after 24 hours"): another backup would only spend the
#: item's limit again.
RETRIED_BY_AZURE_CODE = "clouddosabsolutelimitreachedwithretry"


def retried_by_azure(codes: Iterable[str]) -> bool:
    """Whether a job's ``codes`` say Azure retries the operation itself."""
    return any(code.strip().lower() == RETRIED_BY_AZURE_CODE for code in codes)


def throttled(codes: Iterable[str]) -> bool:
    """Whether any of ``codes`` says Azure's daily limit of operations was reached."""
    return any(code.strip().lower() in THROTTLE_CODES for code in codes)


def day_key(moment: datetime) -> str:
    """The UTC day of ``moment``, as a retry message names it (``YYYYMMDD``)."""
    return moment.astimezone(UTC).strftime("%Y%m%d")


def day_start(key: str) -> datetime:
    """When a retry deferred to the UTC day ``key`` may start (midnight plus the margin)."""
    return datetime.strptime(key, "%Y%m%d").replace(tzinfo=UTC) + DAY_MARGIN


def next_day(now: datetime) -> datetime:
    """When a retry deferred from ``now`` to the next UTC day may start."""
    return day_start(day_key(now + timedelta(days=1)))


def daily_attempts_allowed(settings: Settings, rule_max: int, workload: str = Workload.VM) -> int:
    """Attempts allowed per item per UTC day: the rule's, within ``RETRY_DAILY_CAP`` and
    Azure's limit for the workload."""
    return min(rule_max or 1, settings.retry_daily_cap, WORKLOAD_DAILY_LIMITS[workload])


def take_daily_attempt(storage: Storage, incident: Incident, limit: int, now: datetime) -> bool:
    """Count one attempt for the incident's item today; False when ``limit`` is reached."""
    return storage.counters.take(f"item|{incident.item_key}", day_key(now), limit)


#: How far ahead a retry may reserve its start slot: a queue message can be delayed 7 days at
#: most, and a backlog that long is better known (the incident says how long it waits).
RESERVE_HORIZON = timedelta(days=6)


def stagger_window(settings: Settings, now: datetime) -> tuple[datetime, timedelta]:
    """The stagger window ``now`` falls in: its start and its length."""
    window = timedelta(minutes=max(settings.retry_stagger_minutes, 1))
    seconds = window.total_seconds()
    return datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC), window


def window_key(start: datetime) -> str:
    """The counter period of the stagger window starting at ``start``."""
    return start.strftime("%Y%m%d%H%M")


def reserve_start_slot(
    storage: Storage, settings: Settings, incident: Incident, now: datetime
) -> datetime | None:
    """Take a start slot of the vault in the first stagger window that has one, from the
    current window on; returns that window's start (the current one: start now), or None when
    no window within :data:`RESERVE_HORIZON` has one.

    Windows are filled in order, and every slot is one unit of the same ETag-guarded counter
    per vault and window as a start taken at once, so the limit per window holds whoever
    takes it. The vault's mark remembers the latest window reserved in: a reservation starts
    there, not at every full window before it.
    """
    limit = settings.retry_stagger_limit
    current, window = stagger_window(settings, now)
    if limit < 1:
        return None
    subject = f"vault|{incident.VaultId}"
    start = current
    mark = storage.counters.mark(subject)
    if mark > window_key(current):
        start = datetime.strptime(mark, "%Y%m%d%H%M").replace(tzinfo=UTC)
    while start - current <= RESERVE_HORIZON:
        if storage.counters.take(subject, window_key(start), limit):
            if start > current:
                storage.counters.raise_mark(subject, window_key(start))
            return start
        start += window
    return None
