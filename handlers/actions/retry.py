"""The ``retry`` action: a delayed, capped, staggered on-demand backup, and its follow-up.

1. ``respond()`` schedules: a message on the retry queue, visible after the rule's delay.
2. ``run_retry`` (queue trigger) re-verifies and starts the backup, within the guard rails:
   - the job still failed, and the VM still exists (a gone VM goes to ``stop_protection``);
   - no newer successful backup (→ resolved) and no backup running (→ checked again later);
   - attempts per item per UTC day ≤ the rule's, ``RETRY_DAILY_CAP`` and Azure's limit of 9
     (``retries`` table, ETag-guarded) — exhausted → ticket;
   - at most ``RETRY_STAGGER_LIMIT`` retries per vault start in one ``RETRY_STAGGER_MINUTES``
     window — the rest wait for a later window.
3. A follow-up message reads the job the retry started: success resolves the incident (and
   its ticket); failure counts as a failed attempt.

Every step is in the incident's action log, so a redelivered message never starts a second
backup for the same attempt. A message dequeued too often (poison) becomes a ticket.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError

from handlers.actions import ActionContext, act, action
from handlers.azure_ops import DENIED, UNAVAILABLE, AzureCallError, JobState
from handlers.incident import ESCALATED, REJECTED, REMEDIATING, RESOLVED, Incident
from handlers.keys import safe_key
from handlers.runtime import Runtime
from handlers.settings import AZURE_ON_DEMAND_DAILY_LIMIT
from handlers.store import RETRIES

NAME = "retry"
RETRY, FOLLOW_UP = "retry", "follow_up"
#: The host moves a message to the poison queue after host.json's maxDequeueCount (5); we
#: turn it into a ticket one delivery earlier, while we still can.
POISON_AFTER = 4
#: Follow-up checks of a running job before giving up on following it.
MAX_FOLLOW_UPS = 12
#: Polls of the trigger's operation before leaving it to the follow-up.
OPERATION_POLLS = 5
OPERATION_POLL_SECONDS = 2
IN_PROGRESS_CODE = "usererrorbackupoperationinprogress"
FINISHED_OK = ("completed", "completedwithwarnings")


@dataclass(frozen=True)
class RetryMessage:
    """A retry-queue message: which incident, which attempt, what to check."""

    kind: str
    pk: str
    rk: str
    attempt: int
    operation: str = ""
    job: str = ""
    checks: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RetryMessage:
        return cls(**json.loads(text))


def enqueue(runtime: Runtime, message: RetryMessage, delay: timedelta) -> None:
    """Put ``message`` on the retry queue, visible after ``delay`` (scaled in tests)."""
    seconds = int(delay.total_seconds() * runtime.settings.queue_delay_scale)
    runtime.retry_queue.send_message(
        message.to_json().encode(), visibility_timeout=min(seconds, 7 * 86_400)
    )


def _minutes(delay: timedelta) -> str:
    return f"{int(delay.total_seconds() // 60)} min"


def _max_attempts(runtime: Runtime, incident: Incident) -> int:
    rule_max = next((r.retry_max_attempts for r in runtime.rules.rules if r.id == incident.Rule), 1)
    return min(rule_max or 1, runtime.settings.retry_daily_cap, AZURE_ON_DEMAND_DAILY_LIMIT)


def _rule_delay(runtime: Runtime, incident: Incident) -> timedelta:
    minutes = next(
        (r.retry_delay_minutes for r in runtime.rules.rules if r.id == incident.Rule), 30
    )
    return timedelta(minutes=minutes)


@action(NAME)
def schedule_retry(ctx: ActionContext, attempt: int = 1) -> None:
    """Queue attempt ``attempt`` of the retry after the rule's delay."""
    incident = ctx.incident()
    if any(
        a.action == NAME and a.state == "scheduled" and a.attempt == attempt
        for a in incident.actions
    ):
        return
    delay = _rule_delay(ctx.runtime, incident)
    enqueue(ctx.runtime, RetryMessage(RETRY, ctx.pk, ctx.rk, attempt), delay)
    ctx.log(
        NAME,
        "scheduled",
        f"on-demand backup in {_minutes(delay)}",
        attempt=attempt,
        status=REMEDIATING,
    )
    ctx.notify("retry_scheduled", f"Backup retry {attempt} scheduled in {_minutes(delay)}.")


# -- counters ------------------------------------------------------------------------------


def _bump(runtime: Runtime, pk: str, rk: str, limit: int) -> bool:
    """Increment the counter at ``pk``/``rk`` if it is below ``limit``; False when full."""
    table = runtime.store.table(RETRIES)
    for _ in range(16):
        try:
            row = table.get_entity(pk, rk)
        except ResourceNotFoundError:
            try:
                table.create_entity({"PartitionKey": pk, "RowKey": rk, "Count": 1})
                return True
            except ResourceExistsError:
                continue
        if row["Count"] >= limit:
            return False
        row["Count"] += 1
        try:
            table.update_entity(
                row, etag=row.metadata["etag"], match_condition=MatchConditions.IfNotModified
            )
            return True
        except ResourceModifiedError:
            continue
    raise AzureCallError(UNAVAILABLE, "", f"counter {pk}/{rk} is too contended")


def _take_daily_attempt(runtime: Runtime, incident: Incident, now: datetime) -> bool:
    key = safe_key(f"item|{incident.item.key}")
    return _bump(runtime, key, now.strftime("%Y%m%d"), _max_attempts(runtime, incident))


def _take_stagger_slot(runtime: Runtime, incident: Incident, now: datetime) -> timedelta | None:
    """None when a slot was taken; otherwise how long to wait for the next window."""
    window = timedelta(minutes=max(runtime.settings.retry_stagger_minutes, 1))
    start = datetime.fromtimestamp(
        now.timestamp() // window.total_seconds() * window.total_seconds(), UTC
    )
    key = safe_key(f"vault|{incident.VaultId}")
    if _bump(runtime, key, start.strftime("%Y%m%d%H%M"), runtime.settings.retry_stagger_limit):
        return None
    return start + window - now


# -- the queue trigger ---------------------------------------------------------------------


def run_retry(runtime: Runtime, body: str, dequeue_count: int) -> None:
    """Handle one retry-queue message (the ``run_retry`` queue trigger)."""
    message = RetryMessage.from_json(body)
    ctx = ActionContext(runtime, message.pk, message.rk)
    incident = ctx.incident()
    if incident.Status in (RESOLVED, ESCALATED, REJECTED):
        return
    if dequeue_count >= POISON_AFTER:
        ctx.log(NAME, "failed", f"message failed {dequeue_count} times", attempt=message.attempt)
        ctx.escalate(f"Automatic retry gave up after repeated errors (attempt {message.attempt}).")
        return
    try:
        if message.kind == RETRY:
            _attempt(ctx, message)
        else:
            _follow_up(ctx, message)
    except AzureCallError as error:
        ctx.log(NAME, "failed", str(error), attempt=message.attempt)
        if error.kind == UNAVAILABLE:
            raise  # the queue redelivers; POISON_AFTER bounds it
        reason = "denied by authorization" if error.kind == DENIED else str(error)
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
        act(ctx.runtime, ctx.pk, ctx.rk, "stop_protection")
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
        _later(
            ctx, message, _rule_delay(ctx.runtime, incident), f"backup {running.job_id} is running"
        )
        return
    _start(ctx, message, incident)


def _later(ctx: ActionContext, message: RetryMessage, delay: timedelta, why: str) -> None:
    enqueue(ctx.runtime, message, delay)
    ctx.log(
        NAME, "deferred", f"{why}; checking again in {_minutes(delay)}", attempt=message.attempt
    )


def _start(ctx: ActionContext, message: RetryMessage, incident: Incident) -> None:
    now = datetime.now(UTC)
    wait = _take_stagger_slot(ctx.runtime, incident, now)
    if wait is not None:
        limit = ctx.runtime.settings.retry_stagger_limit
        _later(ctx, message, wait, f"{limit} retries already started in vault {incident.VaultName}")
        return
    if not _take_daily_attempt(ctx.runtime, incident, now):
        ctx.log(
            NAME, "exhausted", "daily retry limit reached for this item", attempt=message.attempt
        )
        ctx.notify("retry_exhausted", "No retry left today; a ticket was opened.")
        ctx.escalate("Automatic retries are exhausted for today; the failure needs a person.")
        return
    ctx.log(NAME, "started", "starting an on-demand backup", attempt=message.attempt)
    try:
        operation = ctx.api.trigger_backup(ctx.runtime.settings.recovery_point_expiry_days)
    except AzureCallError as error:
        if error.code.lower() != IN_PROGRESS_CODE:
            raise
        _later(ctx, message, _rule_delay(ctx.runtime, incident), "another backup is in progress")
        return
    _record_trigger(ctx, message.attempt, operation, _poll_operation(ctx, operation))


def _poll_operation(ctx: ActionContext, operation: str) -> str:
    for poll in range(OPERATION_POLLS):
        job_id = ctx.api.operation_job(operation)
        if job_id:
            return job_id
        if poll + 1 < OPERATION_POLLS:
            time.sleep(OPERATION_POLL_SECONDS * ctx.runtime.settings.queue_delay_scale)
    return ""


def _record_trigger(ctx: ActionContext, attempt: int, operation: str, job_id: str) -> None:
    ref = job_id or operation
    ctx.log(
        NAME,
        "triggered",
        f"on-demand backup started (job {ref})",
        attempt=attempt,
        ref=ref,
        status=REMEDIATING,
    )
    ctx.notify("retry_started", f"Backup retry {attempt} started (job {ref}).")
    delay = timedelta(minutes=ctx.runtime.settings.follow_up_minutes)
    enqueue(ctx.runtime, RetryMessage(FOLLOW_UP, ctx.pk, ctx.rk, attempt, operation, job_id), delay)


def _follow_up(ctx: ActionContext, message: RetryMessage) -> None:
    job_id = message.job or ctx.api.operation_job(message.operation)
    job = ctx.api.job(job_id) if job_id else None
    if job is None or job.status.lower() in ("inprogress", "cancelling"):
        if message.checks + 1 >= MAX_FOLLOW_UPS:
            ctx.escalate(
                f"The retry's backup job {job_id or message.operation} did not finish in time."
            )
            return
        later = RetryMessage(
            FOLLOW_UP,
            message.pk,
            message.rk,
            message.attempt,
            message.operation,
            job_id,
            message.checks + 1,
        )
        enqueue(ctx.runtime, later, timedelta(minutes=ctx.runtime.settings.follow_up_minutes))
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
    incident = ctx.incident()
    if message.attempt < _max_attempts(ctx.runtime, incident):
        schedule_retry(ctx, message.attempt + 1)
    else:
        ctx.log(NAME, "exhausted", f"{message.attempt} attempt(s) failed", attempt=message.attempt)
        ctx.notify("retry_exhausted", f"All {message.attempt} retries failed; a ticket was opened.")
        ctx.escalate(f"The backup still fails after {message.attempt} automatic retries.")
