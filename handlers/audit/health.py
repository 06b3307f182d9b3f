"""The responder's own health: is it watching, is anything parked, is anything failing?

One :class:`Health` report of checks, each ``ok``, ``degraded`` (something waits for a person
but the responder works) or ``unhealthy`` (it is not doing its job): the watcher's last run and
its lag behind the schedule, each vault's polls, Event Grid's dead letters, the retry queue's
poison and redelivered messages, claims whose delivery died, and the ticket sinks and chat
channels that failed lately. ``backup-responder health`` exits 0 only when every check is
``ok``; ``GET /api/health`` answers 200 only then (503 otherwise), so a probe can use either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from handlers.core.settings import Settings
from handlers.storage import DeadLetterStore, RetryQueue, Storage
from handlers.storage.digests import CATCH_UP_DAYS, DigestState

OK, DEGRADED, UNHEALTHY = "ok", "degraded", "unhealthy"
_RANK = {OK: 0, DEGRADED: 1, UNHEALTHY: 2}
#: A vault failing this many polls in a row is unhealthy (one failure is degraded).
FAILING_POLLS = 3
#: Sweeps in a row that left work unchecked before health says so: a first run on a large
#: estate may; runs that keep doing it take weeks to cover the estate (their budget is short).
SWEEPS_LEAVING_WORK = 2
#: Failed sinks and channels are looked for this far back.
RECENT = timedelta(hours=24)
#: A vault (or subscription listing) not polled for this many watcher periods is no longer
#: watched: it left its subscription's listing (deleted, moved, our access removed) or the
#: watcher is far behind. Its old polls, good or bad, no longer speak for it: degraded.
UNPOLLED_PERIODS = 5
#: Poll records this old are forgotten, so a vault deleted on purpose does not keep health
#: degraded.
FORGOTTEN_AFTER = timedelta(days=1)
_EVERY_N = re.compile(r"^\*/(\d+)$")


@dataclass(frozen=True)
class Check:
    """One aspect of health."""

    name: str
    status: str
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Health:
    """Every check, and the worst of them."""

    checked_at: datetime
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default=OK)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checkedAt": self.checked_at.isoformat(timespec="seconds"),
            "checks": [asdict(c) for c in self.checks],
        }


def schedule_period(ncrontab: str) -> timedelta:
    """How often an NCRONTAB schedule (``sec min hour day month weekday``) fires, roughly:
    ``*/N`` minutes or hours are understood, anything else counts as hourly.

    >>> schedule_period("0 */15 * * * *"), schedule_period("0 0 */2 * * *")
    (datetime.timedelta(seconds=900), datetime.timedelta(seconds=7200))
    """
    fields = ncrontab.split()
    if len(fields) == 6:
        minute, hour = _EVERY_N.match(fields[1]), _EVERY_N.match(fields[2])
        if minute and fields[2] == "*":
            return timedelta(minutes=int(minute.group(1)))
        if fields[1] == "*" and fields[2] == "*":
            return timedelta(minutes=1)
        if hour:
            return timedelta(hours=int(hour.group(1)))
    return timedelta(hours=1)


def _watcher(storage: Storage, settings: Settings, now: datetime) -> Check:
    period = schedule_period(settings.watch_schedule)
    run = storage.checkpoints.last_run()
    if run is None:
        return Check("watcher", UNHEALTHY, "the watcher has never completed a run")
    lag = now - run["EndedAt"]
    summary = (
        f"last run ended {_ago(lag)} ago (schedule every {_ago(period)}): "
        f"{run.get('Published', 0)} event(s) published, {run.get('VaultErrors', 0)} vault "
        f"error(s){', work left for the next run' if run.get('Deferred') else ''}"
    )
    return Check("watcher", UNHEALTHY if lag > 2 * period + timedelta(minutes=5) else OK, summary)


def _vaults(storage: Storage, settings: Settings, now: datetime) -> Check:
    unpolled_since = now - UNPOLLED_PERIODS * schedule_period(settings.watch_schedule)
    kept = [p for p in storage.checkpoints.polls() if p["LastPollAt"] >= now - FORGOTTEN_AFTER]
    polls = [p for p in kept if p["LastPollAt"] >= unpolled_since]
    unpolled = [p for p in kept if p["LastPollAt"] < unpolled_since]
    failing = [p for p in polls if p.get("ConsecutiveFailures")]
    if not (failing or unpolled):
        return Check("vaults", OK, f"{len(polls)} vault(s) polled successfully")
    details = tuple(
        f"{p['VaultId']}: {p['ConsecutiveFailures']} failed poll(s) in a row, last success "
        f"{p.get('LastSuccessAt') or 'never'}: {p.get('LastError', '')[:200]}"
        for p in failing
    ) + tuple(
        f"{p['VaultId']}: not polled since {p['LastPollAt']} (no longer listed: deleted, moved "
        f"or access removed?), last success {p.get('LastSuccessAt') or 'never'}"
        for p in unpolled
    )
    worst = max((p["ConsecutiveFailures"] for p in failing), default=0)
    status = UNHEALTHY if worst >= FAILING_POLLS else DEGRADED
    summary = (
        f"{len(failing)} of {len(polls)} vault(s) failing, {len(unpolled)} not polled for "
        f"{UNPOLLED_PERIODS} schedule periods"
    )
    return Check("vaults", status, summary, details)


def _dead_letters(store: DeadLetterStore) -> Check:
    waiting = [b for b in store.blobs() if not b.replayed_at]
    if not waiting:
        return Check("dead letters", OK, "no dead-lettered event waits")
    oldest = waiting[0]
    since = oldest.dead_lettered_at.strftime("%Y-%m-%d %H:%M")
    summary = (
        f"{len(waiting)} dead-letter blob(s) wait (oldest {since} UTC): "
        "backup-responder deadletter replay"
    )
    return Check("dead letters", DEGRADED, summary, tuple(b.name for b in waiting[:20]))


def _retry_queue(queue: RetryQueue, poison: RetryQueue) -> Check:
    parked = poison.approximate_count()
    redelivered = [m for m in queue.peek_existing() if (m.dequeue_count or 0) >= 2]
    if not (parked or redelivered):
        return Check("retry queue", OK, "no poison or redelivered message")
    details = tuple(
        f"message {m.id}: dequeued {m.dequeue_count} times, queued {m.inserted_on}"
        for m in redelivered
    )
    summary = f"{parked} poison message(s), {len(redelivered)} visible after a failed try"
    return Check("retry queue", DEGRADED, summary, details)


def _claims(storage: Storage, now: datetime) -> Check:
    stale = storage.claims.stale(now)
    if not stale:
        return Check("claims", OK, "no delivery left a job claimed")
    details = tuple(f"job {c['JobId']}: lease ended {c['LeaseUntil']}" for c in stale[:20])
    summary = f"{len(stale)} job(s) claimed by a delivery that died and was not redelivered"
    return Check("claims", DEGRADED, summary, details)


def _outbound(storage: Storage, now: datetime) -> Check:
    since = now - RECENT
    sinks = [
        f"ticket {row['TicketId']}: {', '.join(json.loads(row['SinkErrors']))}"
        for row in storage.tickets.rows()
        if row.get("UpdatedAt")
        and row["UpdatedAt"] >= since
        and json.loads(row.get("SinkErrors") or "[]")
    ]
    channels = [
        f"incident {i.IncidentId}: {entry.detail}"
        for i in storage.incidents.query("LastSeen ge @since", {"since": since})
        for entry in i.actions
        if entry.action == "notify" and entry.state == "failed"
    ]
    channels += _digest_failures(storage, now)
    if not (sinks or channels):
        return Check("ticket sinks and channels", OK, "none failed in the last 24 h")
    summary = f"{len(sinks)} ticket sink failure(s), {len(channels)} notification failure(s)"
    return Check("ticket sinks and channels", DEGRADED, summary, tuple((sinks + channels)[:20]))


def _digest_failures(storage: Storage, now: datetime) -> list[str]:
    """Digests of the last days (UTC) some channel has not had: the channels that failed, and
    a digest left ``sending`` by a run that died (its lease ran out); the next run sends each."""
    first = f"{now - timedelta(days=CATCH_UP_DAYS):%Y-%m-%d}"
    rows = storage.digests.undelivered(first, f"{now + timedelta(days=1):%Y-%m-%d}")
    stuck = [
        f"digest {row['RowKey']}: stuck in sending since {row['LeaseUntil']:%Y-%m-%d %H:%M} UTC "
        "(its run died; the next run sends it)"
        for row in rows
        if row["State"] == DigestState.SENDING and row["LeaseUntil"] <= now
    ]
    return stuck + [
        f"digest {row['RowKey']}: {error}"  # the error names its channel
        for row in rows
        for error in json.loads(row.get("Errors") or "{}").values()
    ]


def _sweep(storage: Storage, settings: Settings) -> Check:
    """The last orphan sweep: orphans it found and did not stop wait for a person; sweeps
    that keep leaving work unchecked need a larger budget."""
    last = storage.sweeps.last_run()
    if last is None:
        off = settings.sweep_mode == "off"
        return Check("orphan sweep", OK, "off (SWEEP_MODE=off)" if off else "no sweep ran yet")
    run = last.row
    found = json.loads(run.get("Findings") or "{}")
    unlisted = (
        [f"{last.unlisted} more orphaned item(s) not listed: backup-responder sweep"]
        if last.unlisted
        else []
    )
    recent = storage.sweeps.recent(SWEEPS_LEAVING_WORK)
    short = len(recent) == SWEEPS_LEAVING_WORK and all(r.get("Unchecked") for r in recent)
    left = (
        [
            f"the last {SWEEPS_LEAVING_WORK} sweeps each left work unchecked ("
            f"{found.get('leftBecause') or 'their budget ran out'}): each run goes on where "
            "the last stopped, but covering the estate takes several; raise "
            "SWEEP_MAX_ARM_CALLS or SWEEP_TIME_BUDGET_SECONDS, or sweep more often"
        ]
        if short
        else []
    )
    details = tuple(
        left
        + [f"{o['Vm']} in {o['Vault']}: {o['Outcome']}" for o in last.waiting]
        + unlisted
        + [f"{scope}: {error[:200]}" for scope, error in found.get("errors", {}).items()]
    )
    summary = (
        f"last sweep {run['StartedAt']:%Y-%m-%d %H:%M} UTC: {run.get('Orphans', 0)} orphaned "
        f"item(s), {run.get('Stopped', 0)} stopped, {run.get('Moved', 0)} moved VM(s) left "
        f"alone, {run.get('Errors', 0)} skipped"
        + (", work left for the next run" if run.get("Unchecked") else "")
    )
    waiting = last.waiting or last.unlisted
    status = DEGRADED if waiting or short or run.get("Errors") else OK
    return Check("orphan sweep", status, summary, details[:20])


def _ago(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def check(
    storage: Storage,
    settings: Settings,
    dead_letters: DeadLetterStore,
    queues: Iterable[RetryQueue],
    now: datetime,
) -> Health:
    """Every check, now. ``queues`` are the retry queue and its poison queue."""
    retry, poison = queues
    return Health(
        now,
        (
            _watcher(storage, settings, now),
            _vaults(storage, settings, now),
            _dead_letters(dead_letters),
            _retry_queue(retry, poison),
            _claims(storage, now),
            _outbound(storage, now),
            _sweep(storage, settings),
        ),
    )
