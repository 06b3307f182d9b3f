"""The retry guard rails kept in storage counters: attempts per item per UTC day, and starts
per vault per stagger window (Microsoft advises staggering on-demand backups of many VMs)."""

from __future__ import annotations

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


def daily_attempts_allowed(settings: Settings, rule_max: int, workload: str = Workload.VM) -> int:
    """Attempts allowed per item per UTC day: the rule's, within ``RETRY_DAILY_CAP`` and
    Azure's limit for the workload."""
    return min(rule_max or 1, settings.retry_daily_cap, WORKLOAD_DAILY_LIMITS[workload])


def take_daily_attempt(storage: Storage, incident: Incident, limit: int, now: datetime) -> bool:
    """Count one attempt for the incident's item today; False when ``limit`` is reached."""
    return storage.counters.take(f"item|{incident.item_key}", now.strftime("%Y%m%d"), limit)


def take_stagger_slot(
    storage: Storage, settings: Settings, incident: Incident, now: datetime
) -> timedelta | None:
    """None when a start slot of the vault's current window was taken; otherwise how long to
    wait for the next window."""
    window = timedelta(minutes=max(settings.retry_stagger_minutes, 1))
    seconds = window.total_seconds()
    start = datetime.fromtimestamp(now.timestamp() // seconds * seconds, UTC)
    period = start.strftime("%Y%m%d%H%M")
    if storage.counters.take(f"vault|{incident.VaultId}", period, settings.retry_stagger_limit):
        return None
    return start + window - now
