"""What a digest says, computed from stored rows only (incidents, open tickets, the last sweep).

- **Failed**: incidents first recorded in the window (``FirstSeen``), by workload and rule;
  recording time, not failure time, so each incident is in exactly one digest even when the
  watcher found it hours after the job failed. Rejected inputs (the job had not failed) are
  not failures.
- **Fixed automatically**: action-log steps in the window: a retry that succeeded (its backup
  or a newer one), protection stopped with the data kept.
- **Waits for a person**: open tickets; incidents awaiting an approval or whose latest log step
  says they wait (see :func:`waits_for_person`); orphans the last
  sweep listed without stopping them.
- **Failing night after night**: items failing with the same rule on consecutive nights,
  ending tonight; a night runs from noon to noon UTC, so 23:30 and 00:30 are one night.
- **Retry success per rule**: finished retries of the incidents of the last
  :data:`HISTORY` (the audit's arithmetic: succeeded / (succeeded + failed)).
- **Time to resolution per rule**: median and p90, first seen to the fix, over the incidents
  of the last :data:`HISTORY` that a fix resolved (:mod:`handlers.core.results`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from handlers.audit.query import failed_at
from handlers.core.history import night_of
from handlers.core.incident import Incident, IncidentStatus
from handlers.core.results import (
    FIXES,
    RuleRate,
    RuleResolution,
    resolution_by_rule,
    retry_rates,
)
from handlers.storage.sweeps import SweepRun

#: How far back recurring failures, retry success rates and times to resolution look.
HISTORY = timedelta(days=7)
#: Log states that say a person is awaited (an approval's request, for one).
WAITING_STATES = ("await", "pending", "waiting")


@dataclass(frozen=True)
class Failed:
    """Incidents of one workload and rule first recorded in the window."""

    workload: str
    rule: str
    count: int


@dataclass(frozen=True)
class Fix:
    what: str
    item: str
    vault: str
    rule: str
    at: str
    incident: str


@dataclass(frozen=True)
class Wait:
    """Something a person has to do: a ticket, an approval (or any waiting incident), an
    orphan the sweep listed."""

    kind: str
    item: str
    vault: str
    detail: str
    since: str
    ref: str


@dataclass(frozen=True)
class Streak:
    """An item failing with the same rule night after night, up to the last night."""

    item: str
    vault: str
    rule: str
    nights: int
    failures: int


@dataclass(frozen=True)
class Digest:
    """The digest of ``[since, until)``."""

    day: str
    since: datetime
    until: datetime
    dry_run: bool
    failed: tuple[Failed, ...]
    fixed: tuple[Fix, ...]
    waiting: tuple[Wait, ...]
    recurring: tuple[Streak, ...]
    retry: tuple[RuleRate, ...]
    resolution: tuple[RuleResolution, ...] = ()
    #: Scopes the last orphan sweep left unchecked (its budget ran out), and when it ran.
    sweep_left: int = 0
    sweep_at: str = ""

    @property
    def failures(self) -> int:
        return sum(f.count for f in self.failed)

    @property
    def quiet(self) -> bool:
        """Nothing failed and nothing needed fixing since the last digest."""
        return not self.failures and not self.fixed

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "dryRun": self.dry_run,
            "quiet": self.quiet,
            "failures": self.failures,
            "failed": [asdict(f) for f in self.failed],
            "fixed": [asdict(f) for f in self.fixed],
            "waiting": [asdict(w) for w in self.waiting],
            "recurring": [asdict(s) for s in self.recurring],
            "retrySuccess": [{**asdict(r), "rate": r.rate} for r in self.retry],
            "sweepLeftUnchecked": self.sweep_left,
            "timeToResolution": [
                {
                    "rule": r.rule,
                    "resolved": r.resolved,
                    "medianSeconds": r.median.total_seconds(),
                    "p90Seconds": r.p90.total_seconds(),
                }
                for r in self.resolution
            ],
        }


def _in(moment: datetime, since: datetime, until: datetime) -> bool:
    return since <= moment < until


def _failed(new: Iterable[Incident]) -> tuple[Failed, ...]:
    counts = Counter((i.resource_label, i.Rule) for i in new)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Failed(workload, rule, count) for (workload, rule), count in ordered)


def _fixed(incidents: Iterable[Incident], since: datetime, until: datetime) -> tuple[Fix, ...]:
    fixes = [
        Fix(FIXES[(e.action, e.state)], i.resource_name, i.VaultName, i.Rule, e.at, i.IncidentId)
        for i in incidents
        for e in i.actions
        if (e.action, e.state) in FIXES and _in(datetime.fromisoformat(e.at), since, until)
    ]
    return tuple(sorted(fixes, key=lambda f: (f.what, f.at)))


def waits_for_person(incident: Incident) -> bool:
    """Whether an incident (not final) waits for a person: a stop protection awaiting
    approval, or a latest log step whose state says it waits (``awaiting…``, ``pending…``,
    ``waiting…``). Tickets are counted as tickets."""
    if incident.Status in IncidentStatus.FINAL:
        return False
    if incident.Status == IncidentStatus.AWAITING_APPROVAL:
        return True
    steps = incident.actions
    latest = steps[-1].state.lower() if steps else ""
    return latest.startswith(WAITING_STATES)


def _tickets(rows: Iterable[Mapping[str, Any]]) -> list[Wait]:
    """Open tickets, the most repeated first (then the oldest)."""
    return [
        Wait(
            "ticket",
            row.get("VmName") or row.get("Title", ""),
            row.get("VaultName", ""),
            f"{row.get('Rule', '')}, {row.get('Occurrences', 1)}×",
            row["CreatedAt"].isoformat(),
            row["TicketId"],
        )
        for row in sorted(rows, key=lambda r: (-r.get("Occurrences", 1), r["CreatedAt"]))
    ]


def _waiting_incidents(incidents: Iterable[Incident]) -> list[Wait]:
    return [
        Wait(
            "incident",
            i.resource_name,
            i.VaultName,
            f"{i.Rule}: {i.actions[-1].state if i.actions else i.Status}",
            i.LastSeen.isoformat(),
            i.IncidentId,
        )
        for i in incidents
        if waits_for_person(i)
    ]


def _orphans(
    sweep: SweepRun | None, listed: set[str], incidents: Mapping[str, Incident]
) -> list[Wait]:
    """Orphans the last sweep found and did not stop (``SWEEP_MODE=list``, dry run, or the
    stop path left protection on: its ticket says why), unless their incident or its ticket is
    ``listed`` already; those it counted without a row of their own are one line with their
    number."""
    if not sweep:
        return []

    def known(orphan: Mapping[str, Any]) -> bool:
        incident = incidents.get(orphan.get("Incident", ""))
        tickets = {e.ref for e in incident.actions if e.action == "ticket"} if incident else set()
        return bool(({orphan.get("Incident")} | tickets) & listed)

    since = sweep.row["StartedAt"].isoformat()
    listed = [
        Wait(
            "orphan",
            o["Vm"],
            o["Vault"],
            f"VM gone (ARM 404), protection still on ({o['Outcome']})",
            since,
            o["ItemId"],
        )
        for o in sweep.waiting
        if not known(o)
    ]
    if sweep.unlisted:
        more = f"{sweep.unlisted} more orphaned item(s)"
        listed.append(Wait("orphan", more, "", "not listed: backup-responder sweep", since, ""))
    return listed


def _night(incident: Incident) -> date:
    return night_of(failed_at(incident))


def _recurring(history: list[Incident], tonight: set[tuple[str, str, str]]) -> tuple[Streak, ...]:
    groups: dict[tuple[str, str, str], list[Incident]] = {}
    for incident in history:
        groups.setdefault((incident.VaultName, incident.resource_name, incident.Rule), []).append(
            incident
        )
    streaks = []
    for (vault, item, rule), group in groups.items():
        if (vault, item, rule) not in tonight:
            continue
        nights = {_night(i) for i in group}
        night, run = max(nights), 0
        while night in nights:
            run, night = run + 1, night - timedelta(days=1)
        if run >= 2:
            streaks.append(Streak(item, vault, rule, run, len(group)))
    return tuple(sorted(streaks, key=lambda s: (-s.nights, -s.failures, s.item, s.rule)))


def compose(
    incidents: Iterable[Incident],
    tickets: Iterable[Mapping[str, Any]],
    sweep: SweepRun | None,
    since: datetime,
    until: datetime,
    *,
    dry_run: bool,
) -> Digest:
    """The digest of ``[since, until)``.

    :param incidents: every incident changed since ``min(since, until - HISTORY)`` (more do no
        harm: each part selects its own).
    :param tickets: the open ticket rows.
    :param sweep: the last sweep run, if any.
    """
    incidents = list(incidents)
    live = [i for i in incidents if i.Status != IncidentStatus.REJECTED]
    history = [i for i in live if _in(failed_at(i), until - HISTORY, until)]
    new = [i for i in live if _in(i.FirstSeen, since, until)]
    tonight = {(i.VaultName, i.resource_name, i.Rule) for i in new}
    waiting = _tickets(tickets) + _waiting_incidents(incidents)
    listed = {w.ref for w in waiting}
    orphans = _orphans(sweep, listed, {i.IncidentId: i for i in incidents})
    return Digest(
        day=until.date().isoformat(),
        since=since,
        until=until,
        dry_run=dry_run,
        failed=_failed(new),
        fixed=_fixed(incidents, since, until),
        waiting=tuple(waiting + orphans),
        recurring=_recurring(history, tonight),
        retry=retry_rates(history),
        resolution=resolution_by_rule(history),
        sweep_left=sweep.row.get("Unchecked", 0) if sweep else 0,
        sweep_at=sweep.row["StartedAt"].isoformat() if sweep else "",
    )
