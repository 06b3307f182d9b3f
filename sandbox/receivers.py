"""Local HTTP receivers standing in for ServiceNow, Azure DevOps, Teams, Slack and webhooks.

One server on loopback answers each service's paths the way the service documents them, and
checks what each request must carry (method, path, auth header, content type, body shape).
A request that breaks a rule gets a 400 and is listed in :attr:`Receivers.violations`.

>>> with Receivers() as hooks:                                  # doctest: +SKIP
...     settings = Settings(servicenow_url=hooks.url("servicenow"), ...)
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

SERVICENOW_USER, SERVICENOW_PASSWORD = "svc-backup", "sn-pass"
DEVOPS_PAT = "devops-pat"
DEVOPS_ORG, DEVOPS_PROJECT = "contoso", "Backup Ops"
EVENTGRID_KEY = "topic-key"
#: ServiceNow incident states (the Table API's values): a Closed incident is read-only.
SN_RESOLVED, SN_CLOSED = "6", "7"
SN_ACTIVE = ("1", "2", "3")
#: The states of the Basic process's Issue (the default process of a new project), with their
#: categories, as ``…/workitemtypes/{type}/states`` lists them; a new one starts in the first.
DEVOPS_STATES = {
    "Issue": (("To Do", "Proposed"), ("Doing", "InProgress"), ("Done", "Completed")),
}


@dataclass
class Received:
    """One request as it arrived."""

    service: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class _Rules:
    """What the receivers expect and what they answer."""

    received: list[Received] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 100
    #: ServiceNow incidents by sys_id (their fields), Azure DevOps work items by id (their
    #: fields), webhook answers by Idempotency-Key: what the services keep.
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    work_items: dict[int, dict[str, Any]] = field(default_factory=dict)
    idempotent: dict[str, Any] = field(default_factory=dict)


def _check(rules: _Rules, ok: bool, what: str) -> bool:
    if not ok:
        rules.violations.append(what)
    return ok


def _servicenow_query(rules: _Rules, query: str) -> tuple[int, Any]:
    """``GET …/incident?sysparm_query=correlation_id=X``: the Table API's encoded query."""
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    field_name, _, value = params.get("sysparm_query", "").partition("=")
    if not _check(rules, field_name == "correlation_id", "servicenow: unexpected query"):
        return 400, {"error": {"message": "bad query"}}
    found = [
        {"sys_id": sys_id, "number": fields["number"]}
        for sys_id, fields in rules.incidents.items()
        if fields.get("correlation_id") == value
    ]
    return 200, {"result": found[: int(params.get("sysparm_limit", "10000"))]}


def _servicenow(rules: _Rules, r: Received) -> tuple[int, Any]:
    base = "/servicenow/api/now/table/incident"
    auth = r.headers.get("authorization") == _basic(SERVICENOW_USER, SERVICENOW_PASSWORD)
    path, _, query = r.path.partition("?")
    if r.method == "GET" and path == base and _check(rules, auth, "servicenow: bad auth"):
        return _servicenow_query(rules, query)
    shape = isinstance(r.body, dict) and r.headers.get("content-type", "").startswith(
        "application/json"
    )
    if not (
        _check(rules, auth, "servicenow: bad auth") and _check(rules, shape, "servicenow: not JSON")
    ):
        return 400, {"error": {"message": "bad request"}}
    if r.method == "POST" and r.path == base:
        return _servicenow_create(rules, r.body)
    if r.method == "PATCH" and r.path.startswith(base + "/"):
        return _servicenow_update(rules, r.path.rsplit("/", 1)[1], r.body)
    _check(rules, False, f"servicenow: unexpected {r.method} {r.path}")
    return 404, {"error": {"message": "not found"}}


def _servicenow_create(rules: _Rules, body: dict[str, Any]) -> tuple[int, Any]:
    fields_ok = all(
        isinstance(body.get(k), str) and body[k] for k in ("short_description", "description")
    )
    if not _check(rules, fields_ok, "servicenow: incident without description"):
        return 400, {"error": {"message": "missing fields"}}
    rules.next_id += 1
    sys_id, number = uuid.uuid4().hex, f"INC{rules.next_id:07d}"
    rules.incidents[sys_id] = {**body, "number": number}
    return 201, {"result": {"sys_id": sys_id, "number": number}}


def _servicenow_update(rules: _Rules, sys_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A PATCH of an incident. A Closed one is read-only (ServiceNow: "If the incident is
    already closed, you cannot reopen that incident"); moving a Resolved one back to an active
    state counts a reopening, as the form's Reopen does (``reopen_count``)."""
    if not _check(rules, sys_id in rules.incidents, f"servicenow: no incident {sys_id}"):
        return 404, {"error": {"message": "No Record found"}}
    fields = rules.incidents[sys_id]
    if not _check(rules, fields.get("state") != SN_CLOSED, f"servicenow: {sys_id} is closed"):
        return 403, {"error": {"message": "Operation Failed", "detail": "ACL Exception"}}
    if fields.get("state") == SN_RESOLVED and body.get("state") in SN_ACTIVE:
        fields["reopen_count"] = int(fields.get("reopen_count") or 0) + 1
    fields.update(body)
    return 200, {"result": {"sys_id": sys_id, **body}}


def _devops(rules: _Rules, r: Received) -> tuple[int, Any]:
    root = f"/devops/{DEVOPS_ORG}/{DEVOPS_PROJECT}/_apis/wit"
    auth = r.headers.get("authorization") == _basic("", DEVOPS_PAT)
    if not _check(rules, auth, "devops: bad auth"):
        return 401, {"message": "unauthorized"}
    path, _, query = r.path.partition("?")
    routes: dict[str, Callable[[], tuple[int, Any]]] = {
        "create": lambda: _devops_create(rules, r, query),
        "item": lambda: _devops_item(rules, r, path.rsplit("/", 1)[1], query),
        "states": lambda: _devops_states(rules, path.removeprefix(f"{root}/workitemtypes/"), query),
        "wiql": lambda: _wiql(rules, r.body, query),
        "comment": lambda: _devops_comment(rules, r, query),
    }
    route = _devops_route(root, r.method, path)
    if route:
        return routes[route]()
    _check(rules, False, f"devops: unexpected {r.method} {r.path}")
    return 404, {"message": "not found"}


def _devops_route(root: str, method: str, path: str) -> str:
    """Which of the app's Azure DevOps calls a request is (``""``: none of them)."""
    routes = (
        ("create", method == "POST" and path.startswith(f"{root}/workitems/$")),
        ("item", method in ("GET", "PATCH") and path.startswith(f"{root}/workitems/")),
        ("states", method == "GET" and path.startswith(f"{root}/workitemtypes/")),
        ("wiql", method == "POST" and path == f"{root}/wiql"),
        (
            "comment",
            method == "POST"
            and path.startswith(f"{root}/workItems/")
            and path.endswith("/comments"),
        ),
    )
    return next((name for name, hit in routes if hit), "")


def _devops_comment(rules: _Rules, r: Received, query: str) -> tuple[int, Any]:
    ok = isinstance(r.body, dict) and isinstance(r.body.get("text"), str)
    if not _check(rules, ok and "api-version=7.1" in query, "devops: bad comment"):
        return 400, {"message": "bad comment"}
    return 200, {"id": 1, "text": r.body["text"]}


def _devops_create(rules: _Rules, r: Received, query: str) -> tuple[int, Any]:
    patch_ok = (
        r.headers.get("content-type", "").startswith("application/json-patch+json")
        and "api-version=7.1" in query
        and isinstance(r.body, list)
        and all({"op", "path", "value"} <= set(op) for op in r.body)
        and any(op["path"] == "/fields/System.Title" for op in r.body)
    )
    if not _check(rules, patch_ok, "devops: not a JSON Patch work item"):
        return 400, {"message": "bad patch"}
    rules.next_id += 1
    kind = r.path.partition("?")[0].rsplit("/$", 1)[1]
    first = DEVOPS_STATES.get(kind, (("New", "Proposed"),))[0][0]
    fields = {"System.WorkItemType": kind, "System.State": first}
    fields.update({op["path"].removeprefix("/fields/"): op["value"] for op in r.body})
    rules.work_items[rules.next_id] = fields
    return 200, {"id": rules.next_id, "rev": 1, "fields": fields}


def _devops_item(rules: _Rules, r: Received, ref: str, query: str) -> tuple[int, Any]:
    """``GET …/workitems/{id}?fields=…`` and ``PATCH …/workitems/{id}`` (JSON Patch of fields;
    a state must be one of the type's)."""
    item = rules.work_items.get(int(ref)) if ref.isdigit() else None
    if not _check(rules, item is not None and "api-version=7.1" in query, f"devops: item {ref}"):
        return 404, {"message": f"TF401232: Work item {ref} does not exist"}
    assert item is not None
    if r.method == "GET":
        wanted = next((p[7:] for p in query.split("&") if p.startswith("fields=")), "")
        names = wanted.split(",") if wanted else list(item)
        return 200, {"id": int(ref), "fields": {n: item[n] for n in names if n in item}}
    states = [name for name, _ in DEVOPS_STATES.get(item["System.WorkItemType"], ())]
    patch_ok = (
        r.headers.get("content-type", "").startswith("application/json-patch+json")
        and isinstance(r.body, list)
        and all({"op", "path", "value"} <= set(op) for op in r.body)
        and all(op["path"] != "/fields/System.State" or op["value"] in states for op in r.body)
    )
    if not _check(rules, patch_ok, "devops: not a JSON Patch of known fields and states"):
        return 400, {"message": "bad patch"}
    item.update({op["path"].removeprefix("/fields/"): op["value"] for op in r.body})
    return 200, {"id": int(ref), "fields": item}


def _devops_states(rules: _Rules, kind_path: str, query: str) -> tuple[int, Any]:
    """``GET …/workitemtypes/{type}/states``: the type's states with their categories."""
    kind, _, rest = kind_path.partition("/")
    ok = rest == "states" and kind in DEVOPS_STATES and "api-version=7.1" in query
    if not _check(rules, ok, f"devops: unexpected states query for {kind!r}"):
        return 404, {"message": "not found"}
    value = [{"name": n, "color": "b2b2b2", "category": c} for n, c in DEVOPS_STATES[kind]]
    return 200, {"count": len(value), "value": value}


def _wiql(rules: _Rules, body: Any, query: str) -> tuple[int, Any]:
    """The one WIQL shape the app sends: work items whose tags contain a tag."""
    text = body.get("query", "") if isinstance(body, dict) else ""
    tag = text.rpartition("[System.Tags] CONTAINS '")[2].rstrip("'")
    ok = "api-version=7.1" in query and "FROM WorkItems WHERE" in text and bool(tag)
    if not _check(rules, ok, "devops: unexpected WIQL"):
        return 400, {"message": "bad query"}
    found = [
        {"id": item_id, "url": f"workItems/{item_id}"}
        for item_id, fields in rules.work_items.items()
        if tag in [t.strip() for t in str(fields.get("System.Tags", "")).split(";")]
    ]
    return 200, {"queryType": "flat", "workItems": found}


def _teams(rules: _Rules, r: Received) -> tuple[int, Any]:
    try:
        attachment = r.body["attachments"][0]
        ok = (
            r.body["type"] == "message"
            and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
            and attachment["content"]["type"] == "AdaptiveCard"
        )
    except (KeyError, IndexError, TypeError):
        ok = False
    return (202, None) if _check(rules, ok, "teams: not an Adaptive Card message") else (400, None)


def _slack(rules: _Rules, r: Received) -> tuple[int, Any]:
    ok = isinstance(r.body, dict) and isinstance(r.body.get("text"), str)
    return (200, "ok") if _check(rules, ok, "slack: no text") else (400, "invalid_payload")


def _eventgrid(rules: _Rules, r: Received) -> tuple[int, Any]:
    """A custom topic's publish endpoint, for CloudEvents batches sent with the access key."""
    ok = (
        r.method == "POST"
        and r.path.startswith("/eventgrid/api/events?")
        and "api-version=" in r.path
        and r.headers.get("aeg-sas-key") == EVENTGRID_KEY
        and r.headers.get("content-type", "").startswith("application/cloudevents-batch+json")
        and isinstance(r.body, list)
        and all(e.get("specversion") == "1.0" and e.get("id") and e.get("type") for e in r.body)
    )
    return (
        (200, None)
        if _check(rules, ok, "eventgrid: not a CloudEvents batch with the key")
        else (400, None)
    )


def _webhook(rules: _Rules, r: Received) -> tuple[int, Any]:
    """A JSON webhook that honours ``Idempotency-Key``: a repeated key gets the first answer."""
    ok = r.method == "POST" and isinstance(r.body, dict)
    if not _check(rules, ok, "webhook: not JSON"):
        return 400, None
    key = r.headers.get("idempotency-key", "")
    if key and key in rules.idempotent:
        return 200, rules.idempotent[key]
    answer = {"id": f"hook-{uuid.uuid4().hex[:8]}"}
    if key:
        rules.idempotent[key] = answer
    return 200, answer


_SERVICES = {
    "eventgrid": _eventgrid,
    "servicenow": _servicenow,
    "devops": _devops,
    "teams": _teams,
    "slack": _slack,
    "webhook": _webhook,
}


def _handler(rules: _Rules) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            path = unquote(self.path)
            service = urlsplit(path).path.split("/")[1]
            headers = {k.lower(): v for k, v in self.headers.items()}
            received = Received(service, self.command, path, headers, body)
            with rules.lock:
                rules.received.append(received)
                queued = rules.failures.get(service)
                forced = queued.pop(0) if queued else None
                status, answer = (
                    (forced, {"error": "injected"})
                    if forced
                    else _SERVICES.get(service, _unknown)(rules, received)
                )
            data = (
                b""
                if answer is None
                else (answer if isinstance(answer, str) else json.dumps(answer)).encode()
            )
            self.send_response(status)
            self.send_header(
                "Content-Type", "application/json" if not isinstance(answer, str) else "text/plain"
            )
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = _serve  # noqa: N815 (the names http.server calls)

    return Handler


def _unknown(rules: _Rules, r: Received) -> tuple[int, Any]:
    _check(rules, False, f"unknown service {r.service}")
    return 404, None


class Receivers:
    """The receivers on one loopback port; ``url(service)`` gives each base URL."""

    def __init__(self) -> None:
        self._rules = _Rules()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self._rules))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receivers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, service: str) -> str:
        host, port = self._server.server_address[:2]
        base = f"http://{host}:{port}/{service}"
        return f"{base}/{DEVOPS_ORG}" if service == "devops" else base

    def received(self, service: str | None = None) -> list[Received]:
        with self._rules.lock:
            return [r for r in self._rules.received if service in (None, r.service)]

    @property
    def violations(self) -> list[str]:
        return list(self._rules.violations)

    def fail(self, service: str, *statuses: int) -> None:
        """Answer the next requests to ``service`` with these statuses."""
        with self._rules.lock:
            self._rules.failures.setdefault(service, []).extend(statuses)

    def clear(self) -> None:
        with self._rules.lock:
            self._rules.received.clear()
            self._rules.violations.clear()
            self._rules.failures.clear()
            self._rules.incidents.clear()
            self._rules.work_items.clear()
            self._rules.idempotent.clear()

    def change_ticket(self, service: str, ref: str, **fields: Any) -> None:
        """Change a kept ticket as a person would (ServiceNow ``state="7"``, an Azure DevOps
        ``System.State``): the app's next request finds it so."""
        with self._rules.lock:
            if service == "servicenow":
                self._rules.incidents[ref].update(fields)
            else:
                self._rules.work_items[int(ref)].update(
                    {k.replace("_", "."): v for k, v in fields.items()}
                )

    def tickets(self, service: str) -> list[dict[str, Any]]:
        """The tickets a service keeps now (ServiceNow incidents, Azure DevOps work items)."""
        with self._rules.lock:
            kept = self._rules.incidents if service == "servicenow" else self._rules.work_items
            return [dict(fields) for fields in kept.values()]
