"""Retries that learn from outcomes: a retry is withheld, and the incident handed to a person
with the evidence, when retries of the same item and rule did not help on
``RETRY_LEARN_FAILED_NIGHTS`` of the last ``RETRY_LEARN_WINDOW_NIGHTS`` nights before the
failure's own (see :mod:`handlers.core.history` for what counts as helping).

The history is read from the incidents table: the item's partition, its rule, a RowKey range
over the window (:meth:`~handlers.storage.incidents.IncidentStore.of_same_item_and_rule`). The
retry action asks when it plans the retry and again when its message runs (a retry of an
earlier night may have finished in between), never once an attempt has started.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.actions.context import ActionContext
from handlers.core.history import RetryHistory, night_of, night_start, retry_history

NAME = "retry"
#: The retry's log state when history withheld it (the audit counts it apart).
WITHHELD = "withheld"


def history(ctx: ActionContext) -> RetryHistory:
    """The incident's item and rule, night by night, over the learning window."""
    incident = ctx.incident()
    window = ctx.settings.retry_learn_window_nights
    tonight = night_of(incident.failed_at)
    since = night_start(tonight - timedelta(days=window))
    earlier = ctx.services.storage.incidents.of_same_item_and_rule(incident, since)
    return retry_history(earlier, tonight, window)


def _steps(remediation: str) -> str:
    """The remediation's numbered steps (its first line explains the failure and may promise
    the retries that are being withheld); all of it when it has no numbered steps."""
    steps = [line for line in remediation.splitlines() if line[:1].isdigit()]
    return "\n".join(steps) if steps else remediation.strip()


def withhold(ctx: ActionContext, attempt: int) -> bool:
    """Withhold the retry when history says retries do not help here: log which nights and
    which jobs, and escalate with that evidence and the rule's remediation. False (nothing
    done) when learning is off or the evidence is not enough.

    A decision logged before (a redelivery) stands and is finished, not taken again.
    """
    incident = ctx.incident()
    mine = (NAME, WITHHELD, attempt)
    logged = next((a for a in incident.actions if (a.action, a.state, a.attempt) == mine), None)
    if logged is None:
        needed = ctx.settings.retry_learn_failed_nights
        past = history(ctx) if needed else None
        if past is None or len(past.not_helped) < needed:
            return False
        evidence = past.summary()
        ctx.log(NAME, WITHHELD, evidence, attempt=attempt)
        ctx.notify("retry_withheld", f"No automatic retry: {evidence}.")
    else:
        evidence = logged.detail
    # Tickets are kept per item and rule: name the item as the earlier nights' retries did (the
    # job may name no container), so that the escalation joins their ticket.
    ctx.resolve_item_now()
    language = ctx.settings.ticket_language
    remediation = incident.RemediationJa if language == "ja" else incident.Remediation
    ctx.escalate(
        f"Automatic retry withheld: {evidence}.\nWhat to do instead:\n{_steps(remediation)}"
    )
    return True
