"""``GET /api/incidents``: the incident filters over HTTP, as JSON pages, for Power BI, Logic
Apps and scripts.

Query parameters: the filters of :class:`~handlers.audit.query.IncidentQuery` (``vm``,
``vault``, ``rule``, ``category``, ``action``, ``status``, ``dry_run``, ``since``, ``until``),
``top`` (page size, 1-1000, default 100) and ``continuation`` (from the previous page).

The answer::

    {"value": [incident, ...], "count": 100, "continuation": "…", "nextLink": "https://…"}

``continuation`` and ``nextLink`` are absent on the last page. Items come in table order: VM,
then newest first. A page may hold fewer than ``top`` items (even none) and still have a next
page: the Table service stops at partition boundaries and time limits, so follow ``nextLink``
until it is absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from handlers.audit import health
from handlers.audit.query import FILTERS, IncidentQuery, QueryError, page
from handlers.audit.records import as_record
from handlers.core.settings import Settings
from handlers.storage import DeadLetterStore, Storage

DEFAULT_TOP, MAX_TOP = 100, 1000
#: ``code`` carries the function key when it is not sent as the ``x-functions-key`` header.
PARAMETERS = frozenset({*FILTERS, "top", "continuation", "code"})


def _top(raw: str) -> int:
    try:
        top = int(raw)
    except ValueError:
        raise QueryError(f"top={raw!r}: expected a whole number") from None
    if not 1 <= top <= MAX_TOP:
        raise QueryError(f"top={raw!r}: must be 1 to {MAX_TOP}")
    return top


def _next_link(url: str, params: Mapping[str, str], continuation: str) -> str:
    """The request's URL with its parameters and the next page's ``continuation``."""
    query = {k: v for k, v in params.items() if k != "continuation"}
    query["continuation"] = continuation
    return urlunsplit(urlsplit(url)._replace(query=urlencode(query)))


def list_incidents(
    storage: Storage, params: Mapping[str, str], url: str
) -> tuple[int, dict[str, Any]]:
    """Answer one request: HTTP status and JSON body (400 with ``error`` for bad parameters)."""
    unknown = sorted(set(params) - PARAMETERS)
    try:
        if unknown:
            known = ", ".join(sorted(PARAMETERS - {"code"}))
            raise QueryError(f"unknown parameter {', '.join(unknown)}; known: {known}")
        query = IncidentQuery.from_params(params, datetime.now(UTC))
        top = _top(params.get("top") or str(DEFAULT_TOP))
        items, continuation = page(storage, query, top, params.get("continuation", ""))
    except QueryError as error:
        return 400, {"error": str(error)}
    body: dict[str, Any] = {"value": [as_record(i) for i in items], "count": len(items)}
    if continuation:
        body["continuation"] = continuation
        body["nextLink"] = _next_link(url, params, continuation)
    return 200, body


def health_answer(
    storage: Storage, settings: Settings, dead_letters: DeadLetterStore, queues: Any
) -> tuple[int, dict[str, Any]]:
    """``GET /api/health``: 200 when every check is ok, 503 otherwise, with the report."""
    report = health.check(storage, settings, dead_letters, queues, datetime.now(UTC))
    return (200 if report.status == health.OK else 503), report.as_json()
