"""An item's history with one rule, night by night: what was tried and whether it worked.

Backups run at night, so failures are grouped by night, not by calendar day: a night runs
from noon to noon UTC (a failure at 23:30 and one at 00:30 are the same night). For each
earlier night on which the item failed with the rule, its retries say:

- **helped**: a retry that night succeeded (even if the same failure came back the next
  night: that night's backup was made);
- **did not help**: the backups retries started that night failed, or retries were withheld
  because they had not helped before and the same failure came back (no retry of that night
  proved otherwise);
- nothing: no retry's backup ran and finished (dry run, still pending, redirected, or given
  up before a backup started: refused by authorization, an outage, no attempt left today).

The retry action withholds a retry when retries did not help on ``RETRY_LEARN_FAILED_NIGHTS``
of the last ``RETRY_LEARN_WINDOW_NIGHTS`` nights before the failure's own night.

>>> night_of(datetime(2026, 12, 4, 0, 30, tzinfo=UTC)), night_of(datetime(2026, 12, 3, 23, 30,
...     tzinfo=UTC))
(datetime.date(2026, 12, 3), datetime.date(2026, 12, 3))
>>> night_start(date(2026, 12, 3)).isoformat()
'2026-12-03T12:00:00+00:00'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from handlers.core.incident import Incident
from handlers.core.results import RETRY, retry_backup_failed, retry_result

#: A night runs from noon to noon UTC.
NIGHT_SHIFT = timedelta(hours=12)
#: Retry results that are evidence about whether retrying helps.
_EVIDENCE = ("succeeded", "failed", "withheld")


def night_of(moment: datetime) -> date:
    """The night ``moment`` belongs to, named by the date its evening falls on."""
    return (moment - NIGHT_SHIFT).date()


def night_start(night: date) -> datetime:
    """When ``night`` begins (noon UTC of its date)."""
    return datetime.combine(night, time(), tzinfo=UTC) + NIGHT_SHIFT


@dataclass(frozen=True)
class Night:
    """One earlier night of the item with the rule: whether retrying helped, and the failed
    jobs with what became of each one's retry."""

    night: date
    helped: bool
    jobs: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        jobs = ", ".join(f"job {job} retry {result}" for job, result in self.jobs)
        return f"{self.night.isoformat()}: {jobs}"


@dataclass(frozen=True)
class RetryHistory:
    """The nights with evidence among the ``window`` nights before the failure's, newest
    first."""

    window: int
    nights: tuple[Night, ...]

    @property
    def not_helped(self) -> tuple[Night, ...]:
        return tuple(n for n in self.nights if not n.helped)

    def summary(self) -> str:
        """``retries have not helped on 3 of the last 4 nights: 2026-12-05: job … retry
        failed; …`` (which nights, which jobs)."""
        nights = "; ".join(n.describe() for n in self.not_helped)
        count = len(self.not_helped)
        return f"retries have not helped on {count} of the last {self.window} nights: {nights}"


def _evidence(incident: Incident) -> str:
    """The incident's retry result when it says whether retrying helps, else ``""``."""
    result = retry_result(incident)
    if result == "failed" and not retry_backup_failed(incident):
        return ""
    return result if result in _EVIDENCE else ""


def retry_history(earlier: Iterable[Incident], tonight: date, window: int) -> RetryHistory:
    """The history of ``earlier`` incidents of one item and rule over the ``window`` nights
    before ``tonight`` (incidents of other nights, and of tonight, are left out)."""
    first = tonight - timedelta(days=window)
    groups: dict[date, list[Incident]] = {}
    for incident in earlier:
        night = night_of(incident.failed_at)
        if incident.PlannedAction == RETRY and first <= night < tonight:
            groups.setdefault(night, []).append(incident)
    nights = []
    for night, group in sorted(groups.items(), reverse=True):
        jobs = tuple(sorted((i.JobId, r) for i in group if (r := _evidence(i))))
        if jobs:
            helped = any(result == "succeeded" for _, result in jobs)
            nights.append(Night(night, helped, jobs))
    return RetryHistory(window, tuple(nights))
