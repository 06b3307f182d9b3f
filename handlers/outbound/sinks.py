"""Ticket sinks: a generic JSON webhook, ServiceNow (Table API) and Azure DevOps (work items).

Each sink gets the same :class:`TicketContent` and renders it in its own format, escaping
the text that came from the event (error messages, VM names) for that format. The
``tickets`` table, always on, lives in :mod:`handlers.actions.desk`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import requests

from handlers.core.settings import Settings
from handlers.outbound.http import SinkError, send, session


@dataclass(frozen=True)
class TicketContent:
    """What every ticket says, before any sink formats it. Text is raw (unescaped)."""

    ticket_id: str
    incident_id: str
    title: str
    summary: str
    facts: dict[str, str]
    remediation: str
    doc: str
    language: str
    labels: tuple[str, ...] = field(default=())

    def plain_text(self) -> str:
        lines = [self.summary, ""]
        lines += [f"{name}: {value}" for name, value in self.facts.items()]
        lines += ["", "What to do:", self.remediation, "", f"Microsoft guidance: {self.doc}"]
        lines += [f"backup-responder incident: {self.incident_id}"]
        return "\n".join(lines)


class TicketSink(Protocol):
    """A ticket system. ``ref`` is the sink's own id of the ticket.

    ``find`` looks a ticket up by our ticket id (the correlation the sink keeps), so that an
    open interrupted after the sink created the ticket is completed, not repeated; ``""`` when
    the sink has none, or cannot be asked (its ``open`` is then idempotent by key).
    ``reopen`` brings a resolved ticket back to work with ``note`` (the failure came back);
    ``number`` counts the ticket's reopenings, so that each one is told once.
    """

    name: str

    def open(self, ticket: TicketContent) -> str: ...

    def find(self, ticket: TicketContent) -> str: ...

    def append(self, ref: str, ticket: TicketContent, note: str) -> None: ...

    def resolve(self, ref: str, ticket: TicketContent, note: str) -> None: ...

    def reopen(self, ref: str, ticket: TicketContent, note: str, number: int) -> None: ...


_SN_MARKUP = re.compile(r"\[/?code\]", re.IGNORECASE)


def servicenow_text(text: str) -> str:
    """ServiceNow renders ``[code]…[/code]`` in journal fields as HTML: neutralise it."""
    return _SN_MARKUP.sub(lambda m: m.group(0).replace("[", "[\u200b"), text)


def devops_html(ticket: TicketContent, note: str = "") -> str:
    """An HTML body (Azure DevOps rich text); every piece of event text is escaped."""
    e = html.escape
    facts = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in ticket.facts.items())
    steps = "<br>".join(e(line) for line in ticket.remediation.splitlines())
    head = f"<p>{e(note)}</p>" if note else ""
    link = f'<a href="{e(ticket.doc)}">Microsoft guidance</a>'
    return (
        f"{head}<p>{e(ticket.summary)}</p><ul>{facts}</ul><p><b>What to do</b><br>{steps}</p>"
        f"<p>{link} · incident {e(ticket.incident_id)}</p>"
    )


class WebhookSink:
    """POSTs ``{"event": "ticket.opened" | "ticket.updated" | "ticket.resolved" |
    "ticket.reopened", ...}``."""

    name = "webhook"

    def __init__(self, url: str, http: requests.Session) -> None:
        self._url, self._http = url, http

    def _post(self, event: str, ticket: TicketContent, key: str, note: str = "") -> Any:
        body = {"event": event, "note": note, "ticket": asdict(ticket)}
        # The same event for the same ticket (and incident) always carries the same key, so
        # a receiver that honours Idempotency-Key applies a resent one once.
        headers = {"Idempotency-Key": f"backup-responder:{key}"}
        return send(self._http, "POST", self._url, self.name, json=body, headers=headers)

    def open(self, ticket: TicketContent) -> str:
        answer = self._post("ticket.opened", ticket, f"{ticket.ticket_id}:opened")
        return (
            str(answer.get("id", ticket.ticket_id))
            if isinstance(answer, dict)
            else ticket.ticket_id
        )

    def find(self, ticket: TicketContent) -> str:
        return ""  # a webhook cannot be asked; its open is idempotent by key

    def append(self, ref: str, ticket: TicketContent, note: str) -> None:
        # One key per incident and note: a resent note is dropped, a new one is not.
        digest = hashlib.sha256(note.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        key = f"{ticket.ticket_id}:updated:{ticket.incident_id}:{digest}"
        self._post("ticket.updated", ticket, key, note)

    def resolve(self, ref: str, ticket: TicketContent, note: str) -> None:
        self._post("ticket.resolved", ticket, f"{ticket.ticket_id}:resolved", note)

    def reopen(self, ref: str, ticket: TicketContent, note: str, number: int) -> None:
        self._post("ticket.reopened", ticket, f"{ticket.ticket_id}:reopened:{number}", note)


class ServiceNowSink:
    """ServiceNow Table API: ``incident`` records, work notes for repeats, state 6 to resolve,
    state 2 (In Progress) with a work note to reopen (what the form's Reopen does; a Closed
    incident cannot be reopened, so ``TICKET_REOPEN_DAYS`` stays below the auto-close)."""

    name = "servicenow"
    RESOLVED_STATE = "6"
    IN_PROGRESS_STATE = "2"

    def __init__(self, instance: str, user: str, password: str, http: requests.Session) -> None:
        self._base = f"{instance}/api/now/table/incident"
        self._auth = (user, password)
        self._http = http

    def _call(self, method: str, url: str, body: dict[str, Any]) -> Any:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        return send(self._http, method, url, self.name, json=body, auth=self._auth, headers=headers)

    def open(self, ticket: TicketContent) -> str:
        body = {
            "short_description": servicenow_text(ticket.title)[:160],
            "description": servicenow_text(ticket.plain_text()),
            "category": "software",
            "impact": "2",
            "urgency": "2",
            "correlation_id": ticket.ticket_id,
            "correlation_display": "backup-responder",
        }
        answer = self._call("POST", self._base, body)
        try:
            return str(answer["result"]["sys_id"])
        except (TypeError, KeyError):
            raise SinkError("servicenow: the answer has no result.sys_id") from None

    def find(self, ticket: TicketContent) -> str:
        query = {
            "sysparm_query": f"correlation_id={ticket.ticket_id}",
            "sysparm_fields": "sys_id",
            "sysparm_limit": "1",
        }
        headers = {"Accept": "application/json"}
        answer = send(
            self._http, "GET", self._base, self.name, params=query, auth=self._auth, headers=headers
        )
        found = answer.get("result") if isinstance(answer, dict) else None
        return str(found[0]["sys_id"]) if isinstance(found, list) and found else ""

    def append(self, ref: str, ticket: TicketContent, note: str) -> None:
        self._call("PATCH", f"{self._base}/{ref}", {"work_notes": servicenow_text(note)})

    def resolve(self, ref: str, ticket: TicketContent, note: str) -> None:
        body = {
            "state": self.RESOLVED_STATE,
            "close_code": "Solved (Permanently)",
            "close_notes": servicenow_text(note),
        }
        self._call("PATCH", f"{self._base}/{ref}", body)

    def reopen(self, ref: str, ticket: TicketContent, note: str, number: int) -> None:
        body = {"state": self.IN_PROGRESS_STATE, "work_notes": servicenow_text(note)}
        self._call("PATCH", f"{self._base}/{ref}", body)


class AzureDevOpsSink:
    """Azure DevOps work items (JSON Patch), with comments for repeats and the resolution.

    Work item states differ between process templates, so resolution is a comment rather than
    a state change. Reopening is a comment too, and when a person has moved the work item to
    a state of the Resolved or Completed category meanwhile, it goes back to the first state
    of its type's InProgress category (Proposed when it has none), read from the type's state
    list: the names differ between processes (Doing, Active, Committed…), the categories do not.
    """

    name = "azure-devops"
    API = "api-version=7.1"
    COMMENTS_API = "api-version=7.1-preview.4"

    def __init__(self, org: str, project: str, pat: str, kind: str, http: requests.Session):
        token = base64.b64encode(f":{pat}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self._root = f"{org}/{requests.utils.quote(project)}/_apis/wit"
        self._kind = requests.utils.quote(kind)
        self._http = http

    @staticmethod
    def _ticket_tag(ticket: TicketContent) -> str:
        return f"backup-responder-ticket-{ticket.ticket_id}"

    def open(self, ticket: TicketContent) -> str:
        tags = "; ".join([*ticket.labels, self._ticket_tag(ticket)])
        patch = [
            {"op": "add", "path": "/fields/System.Title", "value": ticket.title[:255]},
            {"op": "add", "path": "/fields/System.Description", "value": devops_html(ticket)},
            {"op": "add", "path": "/fields/System.Tags", "value": tags},
        ]
        headers = {**self._headers, "Content-Type": "application/json-patch+json"}
        url = f"{self._root}/workitems/${self._kind}?{self.API}"
        answer = send(self._http, "POST", url, self.name, json=patch, headers=headers)
        if not isinstance(answer, dict) or "id" not in answer:
            raise SinkError("azure-devops: the answer has no work item id")
        return str(answer["id"])

    def find(self, ticket: TicketContent) -> str:
        wiql = (
            "SELECT [System.Id] FROM WorkItems WHERE "
            f"[System.Tags] CONTAINS '{self._ticket_tag(ticket)}'"
        )
        headers = {**self._headers, "Content-Type": "application/json"}
        url = f"{self._root}/wiql?{self.API}"
        answer = send(self._http, "POST", url, self.name, json={"query": wiql}, headers=headers)
        found = answer.get("workItems") if isinstance(answer, dict) else None
        return str(found[0]["id"]) if isinstance(found, list) and found else ""

    def _comment(self, ref: str, ticket: TicketContent, note: str) -> None:
        url = f"{self._root}/workItems/{ref}/comments?{self.COMMENTS_API}"
        body = {"text": devops_html(ticket, note)}
        headers = {**self._headers, "Content-Type": "application/json"}
        send(self._http, "POST", url, self.name, json=body, headers=headers)

    def append(self, ref: str, ticket: TicketContent, note: str) -> None:
        self._comment(ref, ticket, note)

    def resolve(self, ref: str, ticket: TicketContent, note: str) -> None:
        self._comment(ref, ticket, note)

    def reopen(self, ref: str, ticket: TicketContent, note: str, number: int) -> None:
        fields = "System.State,System.WorkItemType"
        url = f"{self._root}/workitems/{ref}?fields={fields}&{self.API}"
        item = send(self._http, "GET", url, self.name, headers=self._headers)
        current = item.get("fields", {}) if isinstance(item, dict) else {}
        active = self._active_state(str(current.get("System.WorkItemType") or ""), current)
        if active:
            patch = [{"op": "add", "path": "/fields/System.State", "value": active}]
            headers = {**self._headers, "Content-Type": "application/json-patch+json"}
            url = f"{self._root}/workitems/{ref}?{self.API}"
            send(self._http, "PATCH", url, self.name, json=patch, headers=headers)
        self._comment(ref, ticket, note)

    def _active_state(self, kind: str, fields: dict[str, Any]) -> str:
        """The state to move a work item back to: ``""`` when it is not resolved or closed."""
        if not kind:
            return ""
        url = f"{self._root}/workitemtypes/{requests.utils.quote(kind)}/states?{self.API}"
        answer = send(self._http, "GET", url, self.name, headers=self._headers)
        states = answer.get("value", []) if isinstance(answer, dict) else []
        category = {s.get("name"): s.get("category") for s in states if isinstance(s, dict)}
        if category.get(fields.get("System.State")) not in ("Resolved", "Completed"):
            return ""
        for wanted in ("InProgress", "Proposed"):
            found = next((name for name, c in category.items() if c == wanted), None)
            if found:
                return str(found)
        return ""


def configured_sinks(settings: Settings, http: requests.Session | None = None) -> list[TicketSink]:
    """The external sinks the settings turn on (any combination, possibly none)."""
    http = http or session()
    sinks: list[TicketSink] = []
    if settings.ticket_webhook_url:
        sinks.append(WebhookSink(settings.ticket_webhook_url, http))
    if settings.servicenow_url:
        sinks.append(
            ServiceNowSink(
                settings.servicenow_url,
                settings.servicenow_username,
                settings.servicenow_password,
                http,
            )
        )
    if settings.devops_org_url:
        sinks.append(
            AzureDevOpsSink(
                settings.devops_org_url,
                settings.devops_project,
                settings.devops_pat,
                settings.devops_work_item_type,
                http,
            )
        )
    return sinks
