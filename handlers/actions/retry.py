"""The ``retry`` action: a delayed, capped, staggered on-demand backup, and its follow-up.

1. ``respond()`` schedules: a message on the retry queue, visible after the rule's delay.
2. The queue trigger hands each message to :func:`handle_message`, which re-verifies and
   starts the backup, within the guard rails:
   - the job still failed, and the VM still exists (a gone VM goes to ``stop_protection``);
   - no newer successful backup (→ resolved) and no backup running (→ checked again later);
   - attempts per item per UTC day ≤ the rule's, ``RETRY_DAILY_CAP`` and Azure's limit of 9
     (:mod:`~handlers.actions.retry_limits`) — exhausted → ticket;
   - at most ``RETRY_STAGGER_LIMIT`` retries per vault start in one ``RETRY_STAGGER_MINUTES``
     window — the rest wait for a later window.
3. A follow-up message reads the job the retry started: success resolves the incident (and
   its ticket); failure counts as a failed attempt.

Every step is in the incident's action log, so a redelivered message never starts a second
backup for the same attempt. A message dequeued too often (poison) becomes a ticket.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.actions.context import ActionContext, Services
from handlers.actions.registry import ACTIONS, register
from handlers.actions.retry_limits import (
    daily_attempts_allowed,
    take_daily_attempt,
    take_stagger_slot,
)
from handlers.actions.retry_messages import MessageKind, RetryMessage, enqueue
from handlers.azure.backup import JobState
from handlers.azure.errors import AzureCallError, ErrorKind
from handlers.core.incident import Incident, IncidentStatus

NAME = "retry"
#: The host moves a message to the poison queue after ``host.json``'s ``maxDequeueCount``
#: (5, a test holds them together); the message becomes a ticket one delivery earlier.
POISON_AFTER = 4
#: Follow-up checks of a running job before giving up on following it.
MAX_FOLLOW_UPS = 12
IN_PROGRESS_CODE = "usererrorbackupoperationinprogress"
FINISHED_OK = ("completed", "completedwithwarnings")
PARAMETERS = {
    "delay_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 30},
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 9, "default": 1},
}


def _minutes(delay: timedelta) -> str:
    return f"{int(delay.total_seconds() // 60)} min"


def _delay(ctx: ActionContext) -> timedelta:
    return timedelta(minutes=ctx.params(NAME)["delay_minutes"])


def _max_attempts(ctx: ActionContext) -> int:
    return daily_attempts_allowed(ctx.settings, ctx.params(NAME)["max_attempts"])


def _enqueue(ctx: ActionContext, message: RetryMessage, delay: timedelta) -> None:
    enqueue(ctx.services.retry_queue, message, delay, ctx.settings.queue_delay_scale)


@register(NAME, parameters=PARAMETERS)
def schedule_retry(ctx: ActionContext, attempt: int = 1) -> None:
    """Start an on-demand backup after the rule's delay, re-verified, capped and staggered."""
    incident = ctx.incident()
    if any(
        a.action == NAME and a.state == "scheduled" and a.attempt == attempt
        for a in incident.actions
    ):
        return
    delay = _delay(ctx)
    _enqueue(ctx, RetryMessage(MessageKind.RETRY, ctx.pk, ctx.rk, attempt), delay)
    ctx.log(
        NAME,
        "scheduled",
        f"on-demand backup in {_minutes(delay)}",
        attempt=attempt,
        status=IncidentStatus.REMEDIATING,
    )
    ctx.notify("retry_scheduled", f"Backup retry {attempt} scheduled in {_minutes(delay)}.")


def handle_message(services: Services, message: RetryMessage, dequeue_count: int) -> None:
    """Handle one retry-queue message (for the ``run_retry`` queue trigger)."""
    ctx = ActionContext(services, message.pk, message.rk)
    incident = ctx.incident()
    if incident.Status in IncidentStatus.FINAL:
        return
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


def _attempt(ctx: ActionContext, message: RetryMessage) -> None:
    incident = ctx.incident()
    attempt = message.attempt
    states = {a.state for a in incident.actions if a.action == NAME and a.attempt == attempt}
    if "triggered" in states:
        return  # a redelivery of a message already handled
    if ctx.failure_unconfirmed(NAME, attempt):
        return
    if not ctx.api.vm_exists():
        ctx.log(NAME, "skipped", "ARM has no such VM: stopping protection instead", attempt=attempt)
        ACTIONS["stop_protection"].run(ctx)
        return
    done, running = _newer_jobs(ctx, incident)
    if done:
        ctx.resolve(
            NAME, f"a newer backup succeeded (job {done.job_id})", attempt=attempt, ref=done.job_id
        )
        return
    if "started" in states and running:
        _record_trigger(ctx, attempt, "", running.job_id)  # our own trigger, seen after a crash
        return
    if running:
        _later(ctx, message, _delay(ctx), f"backup {running.job_id} is running")
        return
    _start(ctx, message, incident)


def _later(ctx: ActionContext, message: RetryMessage, delay: timedelta, why: str) -> None:
    _enqueue(ctx, message, delay)
    ctx.log(
        NAME, "deferred", f"{why}; checking again in {_minutes(delay)}", attempt=message.attempt
    )


def _start(ctx: ActionContext, message: RetryMessage, incident: Incident) -> None:
    now = datetime.now(UTC)
    storage, settings = ctx.services.storage, ctx.settings
    wait = take_stagger_slot(storage, settings, incident, now)
    if wait is not None:
        limit = settings.retry_stagger_limit
        _later(ctx, message, wait, f"{limit} retries already started in vault {incident.VaultName}")
        return
    if not take_daily_attempt(storage, incident, _max_attempts(ctx), now):
        ctx.log(
            NAME, "exhausted", "daily retry limit reached for this item", attempt=message.attempt
        )
        ctx.notify("retry_exhausted", "No retry left today; a ticket was opened.")
        ctx.escalate("Automatic retries are exhausted for today; the failure needs a person.")
        return
    ctx.log(NAME, "started", "starting an on-demand backup", attempt=message.attempt)
    try:
        operation = ctx.api.trigger_backup(settings.recovery_point_expiry_days)
    except AzureCallError as error:
        if error.code.lower() != IN_PROGRESS_CODE:
            raise
        _later(ctx, message, _delay(ctx), "another backup is in progress")
        return
    job_id = ctx.api.started_job(operation) if operation else ""
    _record_trigger(ctx, message.attempt, operation, job_id)


def _record_trigger(ctx: ActionContext, attempt: int, operation: str, job_id: str) -> None:
    ref = job_id or "job not known yet"
    ctx.log(
        NAME,
        "triggered",
        f"on-demand backup started ({ref})",
        attempt=attempt,
        ref=job_id,
        status=IncidentStatus.REMEDIATING,
    )
    ctx.notify("retry_started", f"Backup retry {attempt} started ({ref}).")
    message = RetryMessage(MessageKind.FOLLOW_UP, ctx.pk, ctx.rk, attempt, operation, job_id)
    _enqueue(ctx, message, timedelta(minutes=ctx.settings.follow_up_minutes))


def _started_job(ctx: ActionContext, message: RetryMessage) -> str:
    """The job the attempt started: from the message, its operation, or the item's jobs."""
    if message.job:
        return message.job
    if message.operation:
        return ctx.api.operation_job(message.operation)
    # Azure gave no operation URL: the newest backup job of the item since the trigger.
    attempt_log = [a for a in ctx.incident().actions if a.attempt == message.attempt]
    started = next((a for a in attempt_log if a.state == "started"), None)
    since = datetime.fromisoformat(started.at) if started else datetime.now(UTC)
    jobs = [j for j in ctx.api.item_jobs(since - timedelta(minutes=5)) if j.start_time]
    newest = max(jobs, key=lambda j: j.start_time or since, default=None)
    return newest.job_id if newest else ""


def _follow_up(ctx: ActionContext, message: RetryMessage) -> None:
    job_id = _started_job(ctx, message)
    job = ctx.api.job(job_id) if job_id else None
    if job is None or job.status.lower() in ("inprogress", "cancelling"):
        if message.checks + 1 >= MAX_FOLLOW_UPS:
            ctx.escalate(f"The retry's backup job {job_id or '(unknown)'} did not finish in time.")
            return
        later = RetryMessage(
            MessageKind.FOLLOW_UP,
            message.pk,
            message.rk,
            message.attempt,
            message.operation,
            job_id,
            message.checks + 1,
        )
        _enqueue(ctx, later, timedelta(minutes=ctx.settings.follow_up_minutes))
        return
    if job.status.lower() in FINISHED_OK:
        ctx.notify("retry_succeeded", f"Backup retry {message.attempt} succeeded (job {job_id}).")
        ctx.resolve(
            NAME, f"the retry's backup job {job_id} succeeded", attempt=message.attempt, ref=job_id
        )
        return
    ctx.log(
        NAME,
        "failed",
        f"the retry's backup job {job_id} ended {job.status}",
        attempt=message.attempt,
        ref=job_id,
    )
    ctx.notify("retry_failed", f"Backup retry {message.attempt} failed (job {job_id}).")
    if message.attempt < _max_attempts(ctx):
        schedule_retry(ctx, message.attempt + 1)
    else:
        ctx.log(NAME, "exhausted", f"{message.attempt} attempt(s) failed", attempt=message.attempt)
        ctx.notify("retry_exhausted", f"All {message.attempt} retries failed; a ticket was opened.")
        ctx.escalate(f"The backup still fails after {message.attempt} automatic retries.")
