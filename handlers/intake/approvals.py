"""Approvals from people: the ``approvals`` HTTP function and the ``expire_approvals`` timer.

The HTTP function takes no function key: a link in a chat message or a ticket carries a signed,
expiring token instead (:mod:`handlers.core.tokens`). Opening a link (GET) only shows what it
would do, with a button; the decision is the form's POST. Chat services and mail scanners
open links to preview them, and a preview must never approve a stop.

A link that cannot be used changes nothing. One we signed (replayed, used, expired, of another
request) is written once in its incident's log, with why. One we did not sign (forged, altered,
garbage) is only logged for telemetry: the route is anonymous, and strangers must not be able
to write to the incident log or to storage at all.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.actions.approval import Decision, decide, sweep
from handlers.core.incident import ApprovalState, Incident
from handlers.core.text import bounded
from handlers.core.tokens import APPROVE, Claims, TokenError, read
from handlers.pipeline.runtime import Runtime

log = logging.getLogger("backup_responder.approvals")
#: Longest name kept from the page's "your name" field.
MAX_NAME = 100
#: What every page is sent with: nothing loads from elsewhere, the token is not passed on.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>backup-responder: {title}</title>
<style>body{{font-family:sans-serif;max-width:42em;margin:2em auto;line-height:1.4}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


@dataclass(frozen=True)
class Page:
    """The HTTP answer: a status and an HTML page."""

    status: int
    html: str
    headers: dict[str, str] = field(default_factory=lambda: dict(HEADERS))


def _page(status: int, title: str, *paragraphs: str, form: str = "") -> Page:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs) + form
    return Page(status, PAGE.format(title=html.escape(title), body=body))


def _claims(runtime: Runtime, token: str) -> Claims:
    """:raises TokenError: the token is not one we signed."""
    return read(token, runtime.settings.approval_secret.encode())


def _question(incident: Incident, claims: Claims) -> str:
    verb = "Approve" if claims.decision == APPROVE else "Reject"
    return (
        f"{verb} stopping protection of {incident.resource_label} {incident.resource_id} in "
        f"vault {incident.VaultName}?"
    )


def show(runtime: Runtime, token: str) -> Page:
    """GET: what the link would do, and a button that does it (nothing is changed here)."""
    try:
        claims = _claims(runtime, token)
    except TokenError as error:
        return _page(400, "This link cannot be used", f"{error}.")
    incident = runtime.storage.find_incident(claims.incident_id)
    approval = incident.approval if incident else None
    if incident is None or approval is None or approval.request_id != claims.request_id:
        return _page(404, "This link cannot be used", "It answers no open approval request.")
    if approval.state != ApprovalState.PENDING:
        return _page(409, "Already decided", f"The request was {approval.state}.")
    form = (
        '<form method="post"><input type="hidden" name="token" value="'
        f'{html.escape(token)}"><p><label>Your name (written in the audit log): '
        f'<input name="by" maxlength="{MAX_NAME}"></label></p>'
        f'<p><button type="submit">{"Approve" if claims.decision == APPROVE else "Reject"}'
        "</button></p></form>"
    )
    return _page(
        200,
        _question(incident, claims),
        "Recovery points are kept either way; stopping only ends new backups. Everything is "
        "verified again (the job, ARM, a move) before anything is changed.",
        f"The link expires at {approval.deadline_time:%Y-%m-%d %H:%M} UTC and works once.",
        form=form,
    )


def answer(runtime: Runtime, token: str, by: str = "") -> Page:
    """POST: take the decision the token carries, once."""
    now = runtime.clock()
    try:
        claims = _claims(runtime, token)
    except TokenError as error:
        named = f" (it names incident {error.claims.incident_id!r})" if error.claims else ""
        log.warning("approval link refused: %s%s", error, named)
        return _page(403, "This link cannot be used", f"{error}. Nothing was changed.")
    incident = runtime.storage.find_incident(claims.incident_id)
    if incident is None:  # signed by us, for an incident since expired from the table
        log.warning("approval link for no incident (%s)", claims.incident_id)
        return _page(404, "This link cannot be used", "It names no incident. Nothing changed.")
    name = bounded(by.strip(), MAX_NAME) or "an approval link holder"
    decision = _decide(runtime, incident, claims, name, now)
    title = "Done" if decision.done else "Nothing was changed"
    return _page(200 if decision.done else 409, title, decision.message)


def _decide(
    runtime: Runtime, incident: Incident, claims: Claims, by: str, now: datetime
) -> Decision:
    keys = (incident.PartitionKey, incident.RowKey)
    request = claims.request_id
    return decide(runtime, *keys, claims.decision, by=by, via="link", now=now, request_id=request)


def expire_approvals(runtime: Runtime, now: datetime | None = None) -> int:
    """Entry of the ``expire_approvals`` timer: escalate unanswered approvals past their
    deadline, finish decisions a crash left half done."""
    lease = timedelta(seconds=runtime.settings.claim_lease_seconds)
    handled = sweep(runtime, now or runtime.clock(), lease)
    log.info("closed or finished %d approval(s)", handled)
    return handled
