"""The retry guard rails kept in storage counters: attempts per item per UTC day, and starts
per vault per stagger window (Microsoft advises staggering on-demand backups of many VMs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.core.incident import Incident
from handlers.core.settings import AZURE_ON_DEMAND_DAILY_LIMIT, Settings
from handlers.storage import Storage


def daily_attempts_allowed(settings: Settings, rule_max: int) -> int:
    """Attempts allowed per item per UTC day: the rule's, within the app's and Azure's caps."""
    return min(rule_max or 1, settings.retry_daily_cap, AZURE_ON_DEMAND_DAILY_LIMIT)


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
