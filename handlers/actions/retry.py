"""The ``retry`` action: a delayed, capped, staggered on-demand backup, and its follow-up.

1. ``respond()`` schedules: a message on the retry queue, visible after the rule's delay;
   unless retries of the same item and rule did not help on enough recent nights
   (:mod:`~handlers.actions.retry_learning`): then the retry is withheld and a person gets
   the evidence. A failure that is Azure's daily limit of operations (``CloudDos…``) is
   retried on the next UTC day at the earliest.
2. The queue trigger hands each message to :func:`handle_message`, which re-verifies and
   starts the backup, within the guard rails:
   - the job still failed, and the VM still exists (a gone VM goes to ``stop_protection``);
   - the history still does not say to withhold it (earlier nights' retries may have ended);
   - no newer successful backup (→ resolved) and no backup running (→ checked again later);
   - attempts per item per UTC day ≤ the rule's, ``RETRY_DAILY_CAP`` and Azure's limit of 9
     (:mod:`~handlers.actions.retry_limits`) — exhausted → ticket;
   - at most ``RETRY_STAGGER_LIMIT`` retries per vault start in one ``RETRY_STAGGER_MINUTES``
     window — the rest reserve a slot in the first later window that has one and wait for it
     (one message, however long the queue of retries in the vault), where everything above is
     verified again before the backup starts;
   - Azure refusing the backup for its daily limit defers the same attempt to the next UTC
     day (one message; the attempt is counted on that day, never as a failure).
3. A follow-up message reads the job the retry started: success resolves the incident (and
   its ticket); failure counts as a failed attempt (unless it was Azure's daily limit: then
   as above).

Every step is in the incident's action log, so a redelivered message never starts a second
backup for the same attempt. A message dequeued too often (poison) becomes a ticket.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from handlers.actions.context import ActionContext, Services
from handlers.actions.registry import ACTIONS, register
from handlers.actions.retry_learning import withhold
from handlers.actions.retry_limits import (
    RESERVE_HORIZON,
    daily_attempts_allowed,
    day_key,
    day_start,
    next_day,
    reserve_start_slot,
    retried_by_azure,
    stagger_window,
    take_daily_attempt,
    throttled,
    window_key,
)
from handlers.actions.retry_messages import MessageKind, RetryMessage, enqueue
from handlers.azure.backup import JobState
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.core.incident import ActionEntry, Incident, IncidentStatus
from handlers.core.model import Workload

NAME = "retry"
#: The host moves a message to the poison queue after ``host.json``'s ``maxDequeueCount``
#: (5, a test holds them together); the message becomes a ticket one delivery earlier.
POISON_AFTER = 4
#: Follow-up checks of a running job before giving up on following it.
MAX_FOLLOW_UPS = 12
IN_PROGRESS_CODE = "usererrorbackupoperationinprogress"
#: The log state of an attempt deferred to the next UTC day by Azure's daily limit; the
#: attempt starts afresh after it.
THROTTLED = "throttled"
#: UTC days on which Azure's daily limit may hold for an incident (its failure's own day
#: counts when the failure was the limit) before a person is asked: the limit may be counted
#: over a rolling 24 hours, or something else keeps using the item's operations up.
MAX_THROTTLED_DAYS = 3
#: How far before its own trigger record a retry looks for the backup it started.
CLOCK_SKEW = timedelta(minutes=5)
NO_AD_HOC_LOG = (
    "SAP HANA takes no on-demand log backup; the next scheduled log backup runs within minutes"
)
FINISHED_OK = ("completed", "completedwithwarnings")
RUNNING = ("inprogress", "cancelling")
PARAMETERS = {
    "delay_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 30},
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 9, "default": 1},
}


def _minutes(delay: timedelta) -> str:
    return f"{int(delay.total_seconds() // 60)} min"


def _delay(ctx: ActionContext) -> timedelta:
    return timedelta(minutes=ctx.params(NAME)["delay_minutes"])


def _max_attempts(ctx: ActionContext) -> int:
    workload = ctx.incident().Workload
    return daily_attempts_allowed(ctx.settings, ctx.params(NAME)["max_attempts"], workload)


def _send(
    ctx: ActionContext,
    message: RetryMessage,
    delay: timedelta,
    *,
    state: str,
    detail: str,
    ref: str = "",
    status: str = "",
    unscaled: bool = False,
) -> bool:
    """Enqueue ``message`` and log ``state`` with it; False (nothing sent) when the log shows
    it was sent before. A crash between the two sends it again under the same identity, and
    :func:`_take` acts on one copy only.

    :param unscaled: wait the whole ``delay`` even where ``QUEUE_DELAY_SCALE`` shortens delays.
    """
    if message.id in ctx.incident().retry_messages:
        return False
    scale = 1.0 if unscaled else ctx.settings.queue_delay_scale
    enqueue(ctx.services.retry_queue, message, delay, scale)

    def note(incident: Incident) -> None:
        incident.RetryMessages = json.dumps({**incident.retry_messages, message.id: ""})

    ctx.log(NAME, state, detail, attempt=message.attempt, ref=ref, status=status, also=note)
    return True


def _take(ctx: ActionContext, message: RetryMessage, queue_message_id: str) -> bool:
    """Mark ``message`` taken by this queue message; False for another copy of one already
    taken (the same queue message, redelivered after a crash, is taken again)."""
    taken = [True]

    def take(incident: Incident) -> None:
        messages = incident.retry_messages
        holder = messages.get(message.id, "")
        taken[0] = not holder or holder == queue_message_id  # afresh on each attempt
        if not taken[0]:
            return
        incident.RetryMessages = json.dumps({**messages, message.id: queue_message_id})

    ctx.services.storage.incidents.mutate(ctx.pk, ctx.rk, take)
    return taken[0]


@register(NAME, parameters=PARAMETERS)
def schedule_retry(ctx: ActionContext, attempt: int = 1) -> None:
    """Start an on-demand backup after the rule's delay, re-verified, capped and staggered."""
    if attempt == 1 and withhold(ctx, attempt):
        return
    delay, day = _delay(ctx), ""
    if attempt == 1 and throttled(ctx.incident().ErrorCodes.split(",")):
        # The failure is Azure's daily limit itself: nothing can start before the next UTC day.
        now = ctx.now()
        due = max(now + delay, next_day(now))
        delay, day = due - now, day_key(due)
    first = RetryMessage(MessageKind.RETRY, ctx.pk, ctx.rk, attempt, day=day)
    scheduled = f"on-demand backup in {_minutes(delay)}"
    if day:
        scheduled += f" (Azure's daily limit was reached: not before {_day(day)} UTC)"
    remediating = IncidentStatus.REMEDIATING
    if _send(ctx, first, delay, state="scheduled", detail=scheduled, status=remediating):
        ctx.notify("retry_scheduled", f"Backup retry {attempt} scheduled in {_minutes(delay)}.")


def _day(key: str) -> str:
    return f"{key[:4]}-{key[4:6]}-{key[6:]}"


def handle_message(
    services: Services, message: RetryMessage, dequeue_count: int, queue_message_id: str
) -> None:
    """Handle one retry-queue message (for the ``run_retry`` queue trigger)."""
    ctx = ActionContext(services, message.pk, message.rk)
    incident = ctx.incident()
    if incident.Status in IncidentStatus.FINAL:
        return
    if not _take(ctx, message, queue_message_id):
        ctx.log(NAME, "skipped", f"a second copy of message {message.id}", attempt=message.attempt)
        return
    if message.successor_id in incident.retry_messages:
        return  # it handed over to the next message already, then its instance died
    if dequeue_count >= POISON_AFTER:
        ctx.log(NAME, "failed", f"message failed {dequeue_count} times", attempt=message.attempt)
        ctx.escalate(f"Automatic retry gave up after repeated errors (attempt {message.attempt}).")
        return
    try:
        if message.kind == MessageKind.RETRY:
            _attempt(ctx, message)
        else:
            _follow_up(ctx, message)
    except AzureCallError as error:
        ctx.log(NAME, "failed", str(error), attempt=message.attempt)
        if error.kind == ErrorKind.UNAVAILABLE:
            raise  # the queue redelivers; POISON_AFTER bounds it
        reason = "denied by authorization" if error.kind == ErrorKind.DENIED else str(error)
        ctx.escalate(f"Automatic retry failed: {reason}.")


def _newer_jobs(ctx: ActionContext, incident: Incident) -> tuple[JobState | None, JobState | None]:
    """(a newer successful backup, a running backup) of the item, if any."""
    since = incident.JobStartTime or incident.FirstSeen
    jobs = [j for j in ctx.api.item_jobs(since) if j.job_id != incident.JobId]
    done = next((j for j in jobs if j.status.lower() in FINISHED_OK), None)
    running = next((j for j in jobs if j.status.lower() == "inprogress"), None)
    return done, running


def _redirected(ctx: ActionContext, incident: Incident, attempt: int) -> bool:
    """Whether no backup is to be retried: what the item protects is gone (→ stop protection),
    needs a person first (a soft-deleted share), or takes no on-demand backup of this kind."""
    verdict = ctx.api.gone()
    if verdict.gone:
        ctx.log(NAME, "skipped", f"{verdict.why}: stopping protection instead", attempt=attempt)
        ACTIONS["stop_protection"].run(ctx)
        return True
    if verdict.urgent or _no_ad_hoc_backup(incident):
        why = verdict.why if verdict.urgent else NO_AD_HOC_LOG
        ctx.log(NAME, "skipped", why, attempt=attempt)
        ctx.escalate(f"{'Urgent: ' if verdict.urgent else ''}No automatic retry: {why}.")
        return True
    return False


def _no_ad_hoc_backup(incident: Incident) -> bool:
    """SAP HANA takes no on-demand log backup (the next scheduled one runs within minutes)."""
    return incident.Workload == Workload.HANA and incident.BackupType.lower() == "log"


def _attempt_log(incident: Incident, attempt: int) -> list[ActionEntry]:
    return [a for a in incident.actions if a.action == NAME and a.attempt == attempt]


def _since_throttle(log: list[ActionEntry]) -> list[ActionEntry]:
    """An attempt's log since Azure's daily limit last deferred it (its new day starts it
    afresh: the backup refused then was never started)."""
    marks = [n for n, entry in enumerate(log) if entry.state == THROTTLED]
    return log[marks[-1] + 1 :] if marks else log


def _settled(
    ctx: ActionContext, message: RetryMessage, log: list[ActionEntry], started: ActionEntry | None
) -> bool:
    """Whether this message is to start no backup now, checked in this order: the attempt is
    under way, the Backup API does not confirm the failure, nothing is to be retried (gone,
    urgent, no such backup), history withholds the retry, the backup of a run that died is
    found, or it came before the UTC day Azure's daily limit put it off to (it waits again).
    Each acts as it says."""
    incident, attempt = ctx.incident(), message.attempt
    return (
        any(a.state == "triggered" for a in log)
        or ctx.failure_unconfirmed(NAME, attempt)
        or _redirected(ctx, incident, attempt)
        or (started is None and withhold(ctx, attempt))
        or (started is not None and _found_own_backup(ctx, message, started))
        or _before_its_day(ctx, message)
    )


def _before_its_day(ctx: ActionContext, message: RetryMessage) -> bool:
    """A message put off to a UTC day that has not begun (clocks differ, the sandbox shortens
    delays) waits for it again."""
    now = ctx.now()
    if not message.day or day_key(now) >= message.day:
        return False
    why = f"Azure's daily limit: not before {_day(message.day)} UTC"
    _wait_until(ctx, message, day_start(message.day), now, why)
    return True


def _attempt(ctx: ActionContext, message: RetryMessage) -> None:
    incident = ctx.incident()
    attempt = message.attempt
    log = _since_throttle(_attempt_log(incident, attempt))
    started = next((a for a in log if a.state == "started"), None)
    if _settled(ctx, message, log, started):
        return
    done, running = _newer_jobs(ctx, incident)
    if done:
        ctx.resolve(
            NAME, f"a newer backup succeeded (job {done.job_id})", attempt=attempt, ref=done.job_id
        )
        return
    if running:
        _later(ctx, message, _delay(ctx), f"backup {running.job_id} is running")
        return
    # A crash right after "started" (its latest step) already holds this window's start slot;
    # a start Azure refused ("deferred" since) needs a slot in the window it tries again in.
    # Either way the day's attempt was counted once.
    crashed = started is not None and log[-1].state == "started"
    _start(ctx, message, incident, counted=started is not None, slotted=crashed)


def _found_own_backup(ctx: ActionContext, message: RetryMessage, started: ActionEntry) -> bool:
    """After a crash between "started" and "triggered": the backup this attempt started, if
    Azure has it, is recorded (and, when it has already ended, acted on); False when the
    trigger never reached Azure."""
    ours = _job_since(ctx, datetime.fromisoformat(started.at))
    if ours is None:
        return False
    if ours.status.lower() in RUNNING:
        _record_trigger(ctx, message, "", ours.job_id)
        return True
    found = f"on-demand backup {ours.job_id} found after a restart"
    ctx.log(NAME, "triggered", found, attempt=message.attempt, ref=ours.job_id)
    _conclude(ctx, message, ours)
    return True


def _job_since(ctx: ActionContext, moment: datetime) -> JobState | None:
    """The newest backup job of the item that started since ``moment`` (allowing for clocks
    a few minutes apart), or None."""
    jobs = [j for j in ctx.api.item_jobs(moment - CLOCK_SKEW) if j.start_time]
    return max(jobs, key=lambda j: j.start_time or moment, default=None)


def _later(
    ctx: ActionContext,
    message: RetryMessage,
    delay: timedelta,
    why: str,
    slot: str = "",
    *,
    unscaled: bool = False,
) -> None:
    """Send the attempt's next message after ``delay``; ``slot`` is the start slot it holds."""
    detail = f"{why}; checking again in {_minutes(delay)}"
    again = message.next(message.kind, slot=slot)
    _send(ctx, again, delay, state="deferred", detail=detail, unscaled=unscaled)


def _wait_until(
    ctx: ActionContext,
    message: RetryMessage,
    moment: datetime,
    now: datetime,
    why: str,
    *,
    slot: str = "",
) -> None:
    """Send the attempt's next message at ``moment`` (a UTC day, a reserved start slot).
    Early a second time for the same moment, it waits the whole time whatever
    ``QUEUE_DELAY_SCALE`` says: no scale brings a moment sooner, a shortened wait only spins."""
    early_before = any(
        (a.action, a.state, a.attempt) == (NAME, "deferred", message.attempt)
        and a.detail.startswith(why)
        for a in ctx.incident().actions
    )
    _later(ctx, message, moment - now, why, slot=slot, unscaled=early_before)


def _slot_held(ctx: ActionContext, message: RetryMessage, now: datetime) -> bool | None:
    """Whether the message holds a start slot of the current window (True), holds none that
    can be used now (False: none, or its window has passed), or came before its window
    (None: it was sent on to that window)."""
    if not message.slot:
        return False
    current, _window = stagger_window(ctx.settings, now)
    if message.slot == window_key(current):
        return True
    reserved = datetime.strptime(message.slot, "%Y%m%d%H%M").replace(tzinfo=UTC)
    if reserved < current:
        return False  # a late delivery: its slot is gone with its window; take a new one
    why = f"start slot reserved in the window at {reserved:%H:%M} UTC"
    _wait_until(ctx, message, reserved, now, why, slot=message.slot)
    return None


def _start(
    ctx: ActionContext, message: RetryMessage, incident: Incident, *, counted: bool, slotted: bool
) -> None:
    """Start the backup within the limits; ``counted`` when an earlier run of this attempt
    already took the day's attempt, ``slotted`` when it also holds the current start slot (it
    died before the trigger reached Azure)."""
    now = ctx.now()
    storage, settings = ctx.services.storage, ctx.settings
    if not slotted:
        held = _slot_held(ctx, message, now)
        if held is None:
            return
        slotted = held
    if not slotted:
        start = reserve_start_slot(storage, settings, incident, now)
        current, window = stagger_window(settings, now)
        if start != current:
            limit = settings.retry_stagger_limit
            why = f"{limit} retries already started in vault {incident.VaultName}"
            if start is None:  # a backlog beyond the horizon (or a limit of 0)
                wait = RESERVE_HORIZON if settings.retry_stagger_limit else window
                _later(ctx, message, wait, f"{why}, no slot reserved")
                return
            why += f"; start slot reserved in the window at {start:%H:%M} UTC"
            _later(ctx, message, start - now, why, slot=window_key(start))
            return
    if not counted and not take_daily_attempt(storage, incident, _max_attempts(ctx), now):
        ctx.log(
            NAME, "exhausted", "daily retry limit reached for this item", attempt=message.attempt
        )
        ctx.notify("retry_exhausted", "No retry left today; a ticket was opened.")
        ctx.escalate("Automatic retries are exhausted for today; the failure needs a person.")
        return
    if not counted:
        ctx.log(NAME, "started", "starting an on-demand backup", attempt=message.attempt)
    try:
        operation = ctx.api.trigger_backup(settings.recovery_point_expiry_days)
    except AzureCallError as error:
        if throttled([error.code]):
            _next_utc_day(ctx, message, now, f"Azure refused the backup ({error.code})")
            return
        if error.code.lower() != IN_PROGRESS_CODE:
            raise
        _later(ctx, message, _delay(ctx), "another backup is in progress")
        return
    job_id = ctx.api.started_job(operation) if operation else ""
    _record_trigger(ctx, message, operation, job_id)


def _record_trigger(ctx: ActionContext, message: RetryMessage, operation: str, job_id: str) -> None:
    ref = job_id or "job not known yet"
    follow_up = message.next(
        MessageKind.FOLLOW_UP, operation=operation, job=job_id, checks=0, slot="", day=""
    )
    delay = timedelta(minutes=ctx.settings.follow_up_minutes)
    detail = f"on-demand backup started ({ref})"
    remediating = IncidentStatus.REMEDIATING
    if _send(
        ctx, follow_up, delay, state="triggered", detail=detail, ref=job_id, status=remediating
    ):
        ctx.notify("retry_started", f"Backup retry {message.attempt} started ({ref}).")


def _started_job(ctx: ActionContext, message: RetryMessage) -> str:
    """The job the attempt started: from the message, its operation, or the item's jobs."""
    if message.job:
        return message.job
    if message.operation:
        return ctx.api.operation_job(message.operation)
    # Azure gave no operation URL: the newest backup job of the item since the trigger.
    started = next(
        (a for a in _attempt_log(ctx.incident(), message.attempt) if a.state == "started"), None
    )
    ours = _job_since(ctx, datetime.fromisoformat(started.at) if started else ctx.now())
    return ours.job_id if ours else ""


def _follow_up(ctx: ActionContext, message: RetryMessage) -> None:
    job_id = _started_job(ctx, message)
    job = ctx.api.job(job_id) if job_id else None
    if job is None or job.status.lower() in RUNNING:
        if message.checks + 1 >= MAX_FOLLOW_UPS:
            ctx.escalate(f"The retry's backup job {job_id or '(unknown)'} did not finish in time.")
            return
        again = message.next(MessageKind.FOLLOW_UP, job=job_id, checks=message.checks + 1)
        delay = timedelta(minutes=ctx.settings.follow_up_minutes)
        detail = f"backup {job_id or '(unknown)'} still running"
        _send(ctx, again, delay, state="deferred", detail=detail)
        return
    _conclude(ctx, message, job)


def _next_utc_day(
    ctx: ActionContext, message: RetryMessage, hit: datetime, why: str, ref: str = ""
) -> None:
    """Azure's daily limit of operations for the item was reached at ``hit``: run the same
    attempt again on the next UTC day (counted on that day, never as a failed attempt), unless
    the limit has now held on :data:`MAX_THROTTLED_DAYS` UTC days (then a person is asked)."""
    incident, now = ctx.incident(), ctx.now()
    days = 1 + _throttled_days(incident)
    if days >= MAX_THROTTLED_DAYS:
        held = f"{why}; Azure's daily limit of operations held on {days} UTC days"
        ctx.log(NAME, "exhausted", held, attempt=message.attempt)
        ctx.notify("retry_exhausted", f"{held}; a ticket was opened.")
        ctx.escalate(f"Automatic retry gave up: {held}.")
        return
    due = max(next_day(hit), now)
    again = message.next(
        MessageKind.RETRY, day=day_key(due), slot="", operation="", job="", checks=0
    )
    detail = (
        f"{why}: Azure's daily limit of operations for the item is reached; the attempt runs "
        f"again on {due:%Y-%m-%d} UTC, no attempt spent"
    )
    if _send(ctx, again, due - now, state=THROTTLED, detail=detail, ref=ref):
        text = f"Backup retry {message.attempt} deferred to {due:%Y-%m-%d} UTC ({why})."
        ctx.notify("retry_deferred", text)


def _throttled_days(incident: Incident) -> int:
    """UTC days Azure's daily limit has held for the incident so far: each deferral, and the
    failure itself when it was the limit."""
    deferrals = sum(1 for a in incident.actions if (a.action, a.state) == (NAME, THROTTLED))
    return deferrals + throttled(incident.ErrorCodes.split(","))


def _conclude(ctx: ActionContext, message: RetryMessage, job: JobState) -> None:
    """Act on how the attempt's backup job ended."""
    attempt = message.attempt
    if job.status.lower() in FINISHED_OK:
        ctx.notify("retry_succeeded", f"Backup retry {attempt} succeeded (job {job.job_id}).")
        ctx.resolve(
            NAME, f"the retry's backup job {job.job_id} succeeded", attempt=attempt, ref=job.job_id
        )
        return
    ended = f"the retry's backup job {job.job_id} ended {job.status}"
    if retried_by_azure(job.codes):
        why = f"{ended} at Azure's daily limit; Azure retries it itself once 24 hours have passed"
        ctx.log(
            NAME, "skipped", why, attempt=attempt, ref=job.job_id, status=IncidentStatus.RESOLVED
        )
        return
    if throttled(job.codes):
        _next_utc_day(ctx, message, job.end_time or ctx.now(), ended, ref=job.job_id)
        return
    ctx.log(NAME, "failed", ended, attempt=attempt, ref=job.job_id)
    ctx.notify("retry_failed", f"Backup retry {attempt} failed (job {job.job_id}).")
    if attempt < _max_attempts(ctx):
        schedule_retry(ctx, attempt + 1)
    else:
        ctx.log(NAME, "exhausted", f"{attempt} attempt(s) failed", attempt=attempt)
        ctx.notify("retry_exhausted", f"All {attempt} retries failed; a ticket was opened.")
        ctx.escalate(f"The backup still fails after {attempt} automatic retries.")
