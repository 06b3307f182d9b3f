"""A digest as people read it: plain text (the CLI, the table row, the webhook's ``text``), a
Teams Adaptive Card and a Slack message, each escaped as the per-event notifications are
(Markdown for Teams, ``&<>`` for Slack): names and rules come from events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.core.results import duration_text
from handlers.digest.content import Digest
from handlers.outbound.notify import adaptive_card_message, markdown_escape, slack_escape

#: Lines shown per section; the rest is counted.
TOP = 10
#: Slack refuses a section text over 3,000 characters.
SLACK_SECTION = 2_900


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]


def _time(moment: datetime | str) -> str:
    text = moment.isoformat() if isinstance(moment, datetime) else moment
    return text[:16].replace("T", " ")


def headline(digest: Digest) -> str:
    """The first line; for a quiet night, the whole message."""
    since = f"since {_time(digest.since)} UTC"
    notes = " (dry run: nothing was changed in Azure)" if digest.dry_run else ""
    if digest.sweep_left:
        notes += (
            f" The orphan sweep of {_time(digest.sweep_at)} UTC left {digest.sweep_left} "
            "scope(s) unchecked (its budget ran out): the next run goes on from there."
        )
    if digest.quiet:
        waiting = (
            f" {len(digest.waiting)} item(s) still wait for a person."
            if digest.waiting
            else " Nothing waits for a person."
        )
        return f"Quiet night: no backup failed and nothing needed fixing {since}.{waiting}{notes}"
    return f"Backup digest {digest.day}, {since}{notes}"


def _top(lines: list[str]) -> tuple[str, ...]:
    more = len(lines) - TOP
    if more <= 0:
        return tuple(lines)
    return (*lines[:TOP], f"… and {more} more: backup-responder summary")


def sections(digest: Digest) -> list[Section]:
    """The digest's parts with their lines (none for a quiet night)."""
    if digest.quiet:
        return []
    parts = [
        Section(
            f"Failed since the last digest: {digest.failures}",
            _top([f"{f.workload} · {f.rule}: {f.count}" for f in digest.failed]),
        ),
        Section(
            f"Fixed automatically: {len(digest.fixed)}",
            _top([f"{f.what}: {f.item} ({f.vault}, {f.rule})" for f in digest.fixed]),
        ),
        Section(
            f"Waits for a person: {len(digest.waiting)}",
            _top(
                [
                    f"{w.kind} {w.ref}: {w.item} ({w.vault}) {w.detail}, since {_time(w.since)}"
                    for w in digest.waiting
                ]
            ),
        ),
    ]
    if digest.recurring:
        lines = [
            f"{s.item} ({s.vault}) · {s.rule}: {s.nights} nights in a row" for s in digest.recurring
        ]
        parts.append(Section("Failing night after night", _top(lines)))
    if digest.retry:
        lines = [
            f"{r.rule}: {r.rate:.0%} ({r.succeeded} of {r.succeeded + r.failed})"
            for r in digest.retry
        ]
        parts.append(Section("Retry success per rule, last 7 days", _top(lines)))
    if digest.resolution:
        lines = [
            f"{r.rule}: median {duration_text(r.median)}, p90 {duration_text(r.p90)} "
            f"({r.resolved} fixed)"
            for r in digest.resolution
        ]
        parts.append(Section("Time to resolution per rule, last 7 days", _top(lines)))
    return parts


def text(digest: Digest) -> str:
    """The whole digest as plain text."""
    out = [headline(digest)]
    for section in sections(digest):
        out.append(section.title)
        out.extend(f"  {line}" for line in section.lines)
    return "\n".join(out) + "\n"


def _block(text_: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": markdown_escape(text_), "wrap": True, **style}


def teams_card(digest: Digest) -> dict[str, Any]:
    """An Adaptive Card message, as a Teams Workflows webhook accepts it."""
    body = [_block(headline(digest), weight="Bolder", size="Medium")]
    for section in sections(digest):
        body.append(_block(section.title, weight="Bolder", spacing="Medium"))
        body.extend(_block(line, spacing="None") for line in section.lines)
    return adaptive_card_message(body)


def slack_message(digest: Digest) -> dict[str, Any]:
    """An incoming-webhook message: blocks, and the plain text as the fallback."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(headline(digest))}}
    ]
    for section in sections(digest):
        lines = "\n".join(f"• {slack_escape(line)}" for line in section.lines)
        mrkdwn = f"*{slack_escape(section.title)}*\n{lines}"[:SLACK_SECTION]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}})
    return {"text": slack_escape(text(digest)), "blocks": blocks}


def webhook_body(digest: Digest) -> dict[str, Any]:
    """The generic webhook's JSON: the text and every part of the digest."""
    return {"event": "backup-responder.digest", "text": text(digest), "digest": digest.as_json()}


def bodies(digest: Digest) -> dict[str, Callable[[], dict[str, Any]]]:
    """What each channel is sent (made only for the channels configured)."""
    return {
        "teams": lambda: teams_card(digest),
        "slack": lambda: slack_message(digest),
        "webhook": lambda: webhook_body(digest),
    }
