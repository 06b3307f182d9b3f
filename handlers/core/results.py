"""What became of incidents, read from their action logs: the planned action's latest state, a
retry's result, what counts as a fix, and how long a fix took. The audit (summary, report),
the digest and the retry action's learning all count with these, so they cannot disagree.

Retry results, from the retry's latest state in an incident's log:

- **succeeded**: the retried backup (or a newer one) succeeded;
- **failed**: retries were exhausted or failed for good, and a person has the incident;
- **withheld**: no retry was started because retries had not helped this item and rule on
  enough recent nights (``RETRY_LEARN_FAILED_NIGHTS``); a person has the incident;
- **redirected**: the retry did not apply (the job no longer failed, the VM was gone);
- **pending**: planned (dry run), scheduled, running or waiting for a follow-up.

The retry success rate is succeeded / (succeeded + failed): retries that ran and finished.

**Time to resolution** runs from when the responder first saw the incident (``FirstSeen``) to
the log step that fixed it (:data:`FIXES`: a retry that succeeded, protection stopped with the
data kept). Incidents resolved without a fix (``record``, a healing the service is trusted to
do) have none: a zero there would say nothing about how fast failures are fixed.

>>> percentile([4, 1, 3, 2], 50), percentile([4, 1, 3, 2], 90), percentile(range(1, 11), 90)
(2, 4, 9)
>>> duration_text(timedelta(minutes=42)), duration_text(timedelta(hours=30))
('42 min', '30.0 h')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from handlers.core.incident import Incident, IncidentStatus

RETRY = "retry"
#: Log steps that fixed something without a person, as the digest names them.
FIXES = {
    (RETRY, "succeeded"): "retry succeeded",
    ("stop_protection", "succeeded"): "protection stopped, data kept",
}
#: Retry results that count in the success rate (the retry ran and finished).
FINISHED = ("succeeded", "failed")


def outcome(incident: Incident) -> str:
    """The latest state of the incident's planned action in its log, e.g. ``succeeded``.

    ``planned`` means nothing was done yet (always so in dry run); ``""`` means no entry.
    """
    states = [a.state for a in incident.actions if a.action == incident.PlannedAction]
    return states[-1] if states else ""


def retry_result(incident: Incident) -> str:
    """``succeeded``, ``failed``, ``withheld``, ``redirected`` or ``pending`` for a retry
    incident (see the module's text)."""
    state = outcome(incident)
    if state == "succeeded":
        return "succeeded"
    escalated = incident.Status == IncidentStatus.ESCALATED
    if state in ("exhausted", "failed") and escalated:
        return "failed"
    if state == "withheld" and escalated:
        return "withheld"
    if state == "skipped":
        return "redirected"
    return "pending"


def retry_backup_failed(incident: Incident) -> bool:
    """Whether a backup the retry started ended failed: a retry that never ran (refused by
    authorization, given up in an outage, no attempt left today) says nothing of whether
    retrying helps."""
    return any(a.action == RETRY and a.state == "failed" and a.ref for a in incident.actions)


@dataclass(frozen=True)
class RuleRate:
    """Finished retries of one rule: how many succeeded, how many failed."""

    rule: str
    succeeded: int
    failed: int

    @property
    def rate(self) -> float:
        return self.succeeded / (self.succeeded + self.failed)


def retry_rates(incidents: Iterable[Incident]) -> tuple[RuleRate, ...]:
    """Retry success per rule over the retry incidents that finished, the worst rate first."""
    results: dict[str, Counter[str]] = {}
    for incident in incidents:
        if incident.PlannedAction == RETRY:
            results.setdefault(incident.Rule, Counter())[retry_result(incident)] += 1
    rates = [
        RuleRate(rule, c["succeeded"], c["failed"])
        for rule, c in results.items()
        if c["succeeded"] + c["failed"]
    ]
    return tuple(sorted(rates, key=lambda r: (r.rate, r.rule)))


def fixed_at(incident: Incident) -> datetime | None:
    """When the step that fixed a resolved incident was logged; None when nothing fixed it."""
    if incident.Status != IncidentStatus.RESOLVED:
        return None
    step = next((a for a in incident.actions if (a.action, a.state) in FIXES), None)
    return datetime.fromisoformat(step.at) if step else None


def resolution_time(incident: Incident) -> timedelta | None:
    """From first seen to the fix (never negative: clocks of instances may differ)."""
    fixed = fixed_at(incident)
    return max(fixed - incident.FirstSeen, timedelta(0)) if fixed else None


def percentile(values: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile: the smallest value with at least ``percent`` % of the
    values at or below it (always one of the values: the p90 of ten is the ninth). The rank is
    counted in whole numbers, so no rounding of 0.9 × 10 can make it the tenth."""
    ordered = sorted(values)
    rank = -(-percent * len(ordered) // 100)  # ⌈percent · n / 100⌉
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class RuleResolution:
    """How long fixing one rule's incidents took: the count, the median and the p90."""

    rule: str
    resolved: int
    median: timedelta
    p90: timedelta


def resolution_by_rule(incidents: Iterable[Incident]) -> tuple[RuleResolution, ...]:
    """Time to resolution per rule over the incidents a fix resolved, the slowest median
    first."""
    times: dict[str, list[float]] = {}
    for incident in incidents:
        took = resolution_time(incident)
        if took is not None:
            times.setdefault(incident.Rule, []).append(took.total_seconds())
    rules = [
        RuleResolution(
            rule,
            len(seconds),
            timedelta(seconds=median(seconds)),
            timedelta(seconds=percentile(seconds, 90)),
        )
        for rule, seconds in times.items()
    ]
    return tuple(sorted(rules, key=lambda r: (-r.median, r.rule)))


def duration_text(span: timedelta) -> str:
    """A duration as a person reads it: ``< 1 min``, ``42 min``, ``3.5 h``, ``1.2 d``."""
    minutes = span.total_seconds() / 60
    if minutes < 1:
        return "< 1 min"
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"
