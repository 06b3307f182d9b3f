"""Automatic notifications: incidents and action outcomes to Teams, Slack and a webhook.

``NOTIFY_FILTER`` keeps a quiet night quiet, e.g.
``outcome=retry_exhausted,protection_stopped,ticket_opened;category=vm_missing``: each part
restricts one dimension (``outcome``, ``category``, ``action``); an empty filter announces
everything. A notification that fails is returned as an error for the incident's log and
never blocks or fails the action it reports.

>>> NotifyFilter.parse("outcome=retry_exhausted;category=vm_missing,transient").wants(
...     "retry_exhausted", "transient", "retry")
True
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from handlers.core.incident import Incident
from handlers.core.settings import Settings, SettingsError
from handlers.outbound.http import SinkError, send, session

log = logging.getLogger("backup_responder.notify")

OUTCOMES = (
    "incident_opened",
    "retry_scheduled",
    "retry_started",
    "retry_succeeded",
    "retry_failed",
    "retry_exhausted",
    "retry_withheld",
    "retry_deferred",
    "protection_stopped",
    "ticket_opened",
    "ticket_reopened",
    "action_failed",
    "resolved",
    "approval_requested",
)
#: Outcomes that ask a person for a decision: announced whatever ``NOTIFY_FILTER`` says (a
#: filter keeps news quiet; a question nobody sees would only time out).
QUESTIONS = frozenset({"approval_requested"})
#: A link a message carries: (label, URL), e.g. ("Approve", "https://…").
Link = tuple[str, str]
_DIMENSIONS = ("outcome", "category", "action")


@dataclass(frozen=True)
class NotifyFilter:
    """Which (outcome, category, action) triples to announce; an empty set means any."""

    outcomes: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> NotifyFilter:
        parts: dict[str, frozenset[str]] = {}
        for clause in filter(None, (c.strip() for c in text.split(";"))):
            name, _, values = clause.partition("=")
            name = name.strip().lower()
            if name not in _DIMENSIONS:
                raise SettingsError(
                    f"NOTIFY_FILTER: unknown part {name!r} (use {', '.join(_DIMENSIONS)})"
                )
            parts[name] = frozenset(v.strip().lower() for v in values.split(",") if v.strip())
        unknown = parts.get("outcome", frozenset()) - set(OUTCOMES)
        if unknown:
            raise SettingsError(f"NOTIFY_FILTER: unknown outcome(s) {', '.join(sorted(unknown))}")
        return cls(
            parts.get("outcome", frozenset()),
            parts.get("category", frozenset()),
            parts.get("action", frozenset()),
        )

    def wants(self, outcome: str, category: str, action: str) -> bool:
        return all(
            not allowed or value.lower() in allowed
            for allowed, value in (
                (self.outcomes, outcome),
                (self.categories, category),
                (self.actions, action),
            )
        )


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<])")


def markdown_escape(text: str) -> str:
    """Escape Markdown (Teams Adaptive Card text) so event text shows as typed."""
    return _MARKDOWN.sub(r"\\\1", text)


def slack_escape(text: str) -> str:
    """Slack's own escaping for mrkdwn text: ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _facts(incident: Incident) -> list[tuple[str, str]]:
    return [
        (incident.resource_label, incident.resource_name or "?"),
        ("Vault", incident.VaultName),
        ("Rule", incident.Rule),
        ("Action", incident.PlannedAction),
        ("Status", incident.Status),
        ("Incident", incident.IncidentId),
    ]


def adaptive_card_message(
    body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An Adaptive Card of ``body`` (and ``actions``) in the message a Teams Workflows
    webhook accepts."""
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if actions is not None:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def teams_card(
    title: str, text: str, incident: Incident, links: tuple[Link, ...] = ()
) -> dict[str, Any]:
    """An incident's card (``links`` become buttons that open them)."""
    facts = [{"title": k, "value": markdown_escape(v)} for k, v in _facts(incident)]
    body = [
        {
            "type": "TextBlock",
            "text": markdown_escape(title),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {"type": "TextBlock", "text": markdown_escape(text), "wrap": True},
        {"type": "FactSet", "facts": facts},
    ]
    actions = [
        *({"type": "Action.OpenUrl", "title": label, "url": url} for label, url in links),
        {"type": "Action.OpenUrl", "title": "Microsoft guidance", "url": incident.Doc},
    ]
    return adaptive_card_message(body, actions)


def slack_message(
    title: str, text: str, incident: Incident, links: tuple[Link, ...] = ()
) -> dict[str, Any]:
    """An incoming-webhook message with blocks and a plain fallback (``links`` become link
    buttons, and links in the fallback text)."""
    facts = "\n".join(f"*{k}:* {slack_escape(v)}" for k, v in _facts(incident))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(text)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
    ]
    if links:
        buttons = [
            {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}
            for label, url in links
        ]
        blocks.append({"type": "actions", "elements": buttons})
    fallback = "".join(f" <{url}|{label}>" for label, url in links)
    return {"text": slack_escape(f"{title}: {text}") + fallback, "blocks": blocks}


class Notifier:
    """Sends announcements to the configured channels."""

    def __init__(self, settings: Settings, http: requests.Session | None = None) -> None:
        self._filter = NotifyFilter.parse(settings.notify_filter)
        self._channels = [
            (name, url)
            for name, url in (
                ("teams", settings.teams_webhook_url),
                ("slack", settings.slack_webhook_url),
                ("webhook", settings.notify_webhook_url),
            )
            if url
        ]
        self._http = (http or session()) if self._channels else http

    @property
    def enabled(self) -> bool:
        """Whether any channel is configured."""
        return bool(self._channels)

    def announce(
        self, outcome: str, incident: Incident, text: str, links: tuple[Link, ...] = ()
    ) -> list[str]:
        """Announce ``outcome`` of ``incident`` (with ``links`` to act on it); returns the
        errors (empty when all went well)."""
        wanted = outcome in QUESTIONS or self._filter.wants(
            outcome, incident.Category, incident.PlannedAction
        )
        if not self._channels or not wanted:
            return []
        title = f"Backup {outcome.replace('_', ' ')}: {incident.resource_name or '?'}"
        bodies = {
            "teams": lambda: teams_card(title, text, incident, links),
            "slack": lambda: slack_message(title, text, incident, links),
            "webhook": lambda: {
                "event": f"backup-responder.{outcome}",
                "text": text,
                "incident": dict(_facts(incident)) | {"category": incident.Category},
                **({"links": dict(links)} if links else {}),
            },
        }
        return list(self.post(bodies).values())

    @property
    def channels(self) -> list[str]:
        """The configured channels' names (``teams``, ``slack``, ``webhook``)."""
        return [name for name, _ in self._channels]

    def post(
        self,
        bodies: Mapping[str, Callable[[], dict[str, Any]]],
        skip: Collection[str] = (),
        on_sent: Callable[[str], None] | None = None,
    ) -> dict[str, str]:
        """Post to every configured channel not in ``skip`` the body ``bodies[channel]()``
        makes (no filter: the caller decided); ``on_sent`` hears of each that took it.

        :returns: channel → error, for the channels that failed.
        """
        errors = {}
        for name, url in self._channels:
            if name in skip:
                continue
            try:
                send(self._http, "POST", url, name, json=bodies[name]())
            except SinkError as error:
                errors[name] = str(error)
                continue
            except Exception as error:  # one channel never keeps the others from their message
                # The type only: an unexpected error's text may carry the channel's secret URL.
                errors[name] = f"{name}: {type(error).__name__}"
                log.exception("%s: the message could not be sent", name)
                continue
            if on_sent:
                try:
                    on_sent(name)
                except Exception:  # it took the message: the others still get theirs
                    log.exception("%s took the message, but that was not recorded", name)
        return errors
