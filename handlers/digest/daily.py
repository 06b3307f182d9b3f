"""Once a day: the digest of everything since the last one, to every channel, exactly once.

The window runs from the end of the last digest (a day before, for the first one) to now. The
day's row in the ``digests`` table is the claim (see :mod:`handlers.storage.digests`): a second
run of the same UTC day finds it and sends nothing; a run that takes over one that died sends
the same window to the channels that have not had it; a channel that failed gets it from a
later run of the same day (``backup-responder digest --send``) or, at the latest, from the next
day's run, which first finishes every earlier digest some channel is missing (a run that died
after its claim, a channel that failed): the window of a night nobody received is never
skipped. Without a channel the digest is only kept in the table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from handlers.audit.summary import open_tickets
from handlers.core.settings import Settings
from handlers.digest import render
from handlers.digest.content import HISTORY, Digest, compose
from handlers.outbound.notify import Notifier
from handlers.storage import Storage
from handlers.storage.digests import CATCH_UP_DAYS, DigestState

log = logging.getLogger("backup_responder.digest")

#: The window of the first digest.
FIRST_WINDOW = timedelta(days=1)
#: A window ends this long before its run: an incident is stamped (``FirstSeen``) before it is
#: stored, so one stamped just before a run's query but stored after it belongs to the next
#: window, never to none.
SETTLE = timedelta(minutes=5)


class Services(Protocol):
    """What the digest needs of the runtime."""

    settings: Settings
    storage: Storage
    clock: Callable[[], datetime]

    @property
    def notifier(self) -> Notifier: ...


@dataclass
class Sent:
    """What one run did: the digest it sent (None when it sent nothing), and why not."""

    day: str
    digest: Digest | None
    state: str
    channels: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def day_of(moment: datetime) -> str:
    return moment.date().isoformat()


def since_last(storage: Storage, now: datetime) -> datetime:
    """Where the next digest starts: where the last one (of an earlier day) ended."""
    last = storage.digests.before(day_of(now))
    return last["Until"] if last else now - SETTLE - FIRST_WINDOW


def compose_for(storage: Storage, since: datetime, until: datetime, *, dry_run: bool) -> Digest:
    """The digest of ``[since, until)`` from the tables (one filtered incident scan)."""
    horizon = min(since, until - HISTORY)
    incidents = storage.incidents.query("LastSeen ge @horizon", {"horizon": horizon})
    return compose(
        incidents, open_tickets(storage), storage.sweeps.last_run(), since, until, dry_run=dry_run
    )


def _deliver(services: Services, row: dict[str, Any], now: datetime) -> Sent:
    """Send the digest of a claimed row's window to the channels that have not had it, then
    close the row (``sent``, or ``partial`` when a channel failed)."""
    storage, day = services.storage, row["RowKey"]
    digest = compose_for(storage, row["Since"], row["Until"], dry_run=services.settings.dry_run)
    had = set(json.loads(row["Channels"]))
    notifier = services.notifier
    errors = notifier.post(
        render.bodies(digest), skip=had, on_sent=lambda ch: storage.digests.note_channel(day, ch)
    )
    state = DigestState.PARTIAL if errors else DigestState.SENT
    storage.digests.finish(
        day,
        state,
        render.text(digest),
        LeaseUntil=now,
        SentAt=services.clock(),
        Quiet=digest.quiet,
        Failures=digest.failures,
        Fixed=len(digest.fixed),
        Waiting=len(digest.waiting),
        Errors=json.dumps(errors),
    )
    sent = [c for c in notifier.channels if c not in errors and c not in had]
    log.info("digest of %s %s to %s", day, state, ", ".join(sent) or "no channel")
    return Sent(day, digest, state, sent, errors)


def _catch_up(services: Services, day: str, now: datetime, lease: timedelta) -> None:
    """Finish the digests of earlier days that some channel has not had (a run died after
    its claim, or a channel failed and nobody sent it again that day): each goes, with its own
    window, to the channels it is missing, before today's. One that fails again stays
    unfinished (health says so) and never keeps today's from being sent."""
    storage = services.storage
    first = day_of(now - timedelta(days=CATCH_UP_DAYS))
    for unfinished in storage.digests.undelivered(first, day):
        earlier = unfinished["RowKey"]
        try:
            row = storage.digests.take(earlier, now, lease)
            if row is not None:
                _deliver(services, row, now)
        except Exception:  # today's digest goes out whatever became of an earlier one
            log.exception("digest of %s: not finished, tried again by the next run", earlier)


def send_daily(services: Services, since: datetime | None = None) -> Sent:
    """Send today's digest unless it was sent (or is being sent) already; first finish the
    earlier days' digests that did not reach every channel.

    :param since: where a new day's window starts (default: where the last digest ended).
    """
    storage, now = services.storage, services.clock()
    day = day_of(now)
    lease = timedelta(seconds=services.settings.claim_lease_seconds)
    _catch_up(services, day, now, lease)
    until = now - SETTLE
    row = storage.digests.begin(day, since or since_last(storage, now), until, now, lease)
    if row is None:
        found = storage.digests.get(day) or {}
        log.info("digest of %s: %s already", day, found.get("State", "sent"))
        return Sent(day, None, f"{found.get('State', DigestState.SENT)} already")
    return _deliver(services, row, now)


def on_timer(services: Services) -> Sent | None:
    """The daily timer: nothing when ``DIGEST_ENABLED=false``."""
    if not services.settings.digest_enabled:
        log.info("digest: DIGEST_ENABLED=false, nothing to do")
        return None
    return send_daily(services)
