"""The numbers over a set of incidents: what failed, why, what was done, whether it worked.

Retry outcomes and time to resolution are counted as :mod:`handlers.core.results` defines
them (the digest counts the same way): a retry **succeeded**, **failed**, was **withheld**
(retries had not helped the item on enough recent nights), was **redirected** (it did not
apply) or is **pending**. The retry success rate is succeeded / (succeeded + failed), overall
and per rule; time to resolution (first seen to the step that fixed it) is given per rule as
its median and p90.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from handlers.audit.query import IncidentQuery, failed_at
from handlers.audit.records import action_outcome
from handlers.core.incident import Incident
from handlers.core.results import (
    RETRY,
    RuleRate,
    RuleResolution,
    resolution_by_rule,
    retry_rates,
    retry_result,
)
from handlers.storage import Storage
from handlers.storage.tickets import TicketStatus

#: An item with at least this many incidents in the window is "failing repeatedly".
REPEATED = 2


@dataclass(frozen=True)
class RetryStats:
    succeeded: int = 0
    failed: int = 0
    withheld: int = 0
    redirected: int = 0
    pending: int = 0

    @property
    def rate(self) -> float | None:
        """Share of finished retries that succeeded; ``None`` when none has finished."""
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None


@dataclass(frozen=True)
class RepeatedItem:
    """A protected item (vault + VM) with several failed jobs in the window; its rules, the
    most frequent first."""

    vault: str
    vm: str
    failures: int
    last_failed: datetime
    rules: tuple[str, ...]


@dataclass(frozen=True)
class OpenTicket:
    ticket_id: str
    title: str
    vm: str
    rule: str
    occurrences: int
    opened: datetime


@dataclass(frozen=True)
class Summary:
    """Counts are ``(key, count)`` lists, largest first (ties by key)."""

    query: IncidentQuery
    total: int
    vms: int
    dry_run: int
    by_category: list[tuple[str, int]]
    by_rule: list[tuple[str, int]]
    by_vault: list[tuple[str, int]]
    by_vm: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    by_outcome: list[tuple[str, int]]
    retry: RetryStats
    retry_by_rule: tuple[RuleRate, ...]
    resolution: tuple[RuleResolution, ...]
    repeated: list[RepeatedItem]
    open_tickets: list[OpenTicket]
    rule_titles: dict[str, str]


def ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _retry_stats(incidents: Sequence[Incident]) -> RetryStats:
    results = Counter(retry_result(i) for i in incidents if i.PlannedAction == RETRY)
    return RetryStats(**results)


def _repeated(incidents: Sequence[Incident]) -> list[RepeatedItem]:
    groups: dict[tuple[str, str], list[Incident]] = {}
    for incident in incidents:
        groups.setdefault((incident.VaultName, incident.VmName), []).append(incident)
    items = [
        RepeatedItem(
            vault,
            vm,
            len(group),
            max(failed_at(i) for i in group),
            tuple(rule for rule, _ in ranked(Counter(i.Rule for i in group))),
        )
        for (vault, vm), group in groups.items()
        if len(group) >= REPEATED
    ]
    return sorted(items, key=lambda r: (-r.failures, r.vault, r.vm))


def open_tickets(storage: Storage) -> list[dict[str, Any]]:
    """Every open ticket row (the tickets table is small: one per item and rule)."""
    return storage.tickets.rows(status=TicketStatus.OPEN)


def _tickets_of(
    incidents: Sequence[Incident], rows: Iterable[Mapping[str, Any]]
) -> list[OpenTicket]:
    ids = {i.IncidentId for i in incidents}
    tickets = [
        OpenTicket(
            row["TicketId"],
            row.get("Title", ""),
            row.get("VmName", ""),
            row.get("Rule", ""),
            row.get("Occurrences", 1),
            row["CreatedAt"],
        )
        for row in rows
        if ids.intersection(json.loads(row.get("Incidents", "[]")))
    ]
    return sorted(tickets, key=lambda t: (-t.occurrences, t.opened))


def summarize(
    incidents: Sequence[Incident], tickets: Iterable[Mapping[str, Any]], query: IncidentQuery
) -> Summary:
    """The summary of ``incidents`` (selected by ``query``); ``tickets`` are open ticket rows,
    of which those opened or appended to by these incidents count."""
    return Summary(
        query=query,
        total=len(incidents),
        vms=len({i.PartitionKey for i in incidents}),
        dry_run=sum(1 for i in incidents if i.DryRun),
        by_category=ranked(Counter(i.Category for i in incidents)),
        by_rule=ranked(Counter(i.Rule for i in incidents)),
        by_vault=ranked(Counter(i.VaultName for i in incidents)),
        by_vm=ranked(Counter(i.VmName for i in incidents)),
        by_status=ranked(Counter(i.Status for i in incidents)),
        by_outcome=ranked(Counter(action_outcome(i) for i in incidents)),
        retry=_retry_stats(incidents),
        retry_by_rule=retry_rates(incidents),
        resolution=resolution_by_rule(incidents),
        repeated=_repeated(incidents),
        open_tickets=_tickets_of(incidents, tickets),
        rule_titles={i.Rule: i.RuleTitle for i in incidents},
    )


def _plain(item: Any) -> dict[str, Any]:
    return {
        k: v.isoformat() if isinstance(v, datetime) else list(v) if isinstance(v, tuple) else v
        for k, v in asdict(item).items()
    }


def as_json(summary: Summary) -> dict[str, Any]:
    """The summary as JSON-ready values (what ``summary --format json`` prints)."""
    return {
        "query": summary.query.as_params(),
        "incidents": summary.total,
        "vms": summary.vms,
        "dry_run": summary.dry_run,
        "by_category": dict(summary.by_category),
        "by_rule": dict(summary.by_rule),
        "by_vault": dict(summary.by_vault),
        "by_vm": dict(summary.by_vm),
        "by_status": dict(summary.by_status),
        "by_outcome": dict(summary.by_outcome),
        "retry": {**asdict(summary.retry), "success_rate": summary.retry.rate},
        "retry_by_rule": {
            r.rule: {"succeeded": r.succeeded, "failed": r.failed, "success_rate": r.rate}
            for r in summary.retry_by_rule
        },
        "time_to_resolution": {
            r.rule: {
                "resolved": r.resolved,
                "median_seconds": r.median.total_seconds(),
                "p90_seconds": r.p90.total_seconds(),
            }
            for r in summary.resolution
        },
        "repeated": [_plain(r) for r in summary.repeated],
        "open_tickets": [_plain(t) for t in summary.open_tickets],
    }
