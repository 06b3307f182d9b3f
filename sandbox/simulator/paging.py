"""ARM list pages: ``{"value": [...], "nextLink": ...}`` with an absolute ``$skipToken`` link."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote, urlencode

from sandbox.simulator.protocol import JsonObject, Request, Response, bad_request

SKIP_TOKEN = "$skipToken"
_Entry = TypeVar("_Entry")


def paginate(
    request: Request,
    entries: Sequence[_Entry],
    page_size: int,
    render: Callable[[_Entry], JsonObject],
) -> Response:
    """The page of ``entries`` the request's ``$skipToken`` points at.

    :param request: the list request; its other query parameters are kept in ``nextLink``.
    :param entries: every matching resource, in order.
    :param page_size: entries per page.
    :param render: turns one entry into its JSON document (only the page's entries are rendered).
    :raises ArmError: 400 for a malformed ``$skipToken``.
    """
    token = request.param(SKIP_TOKEN)
    if token is not None and not token.isdigit():
        raise bad_request(f"Invalid {SKIP_TOKEN} '{token}'.")
    start = int(token or 0)
    end = start + page_size
    body: JsonObject = {"value": [render(entry) for entry in entries[start:end]]}
    if end < len(entries):
        body["nextLink"] = _next_link(request, end)
    return Response(200, body)


def _next_link(request: Request, offset: int) -> str:
    query = {key: value for key, value in request.query.items() if key.lower() != "$skiptoken"}
    query[SKIP_TOKEN] = str(offset)
    encoded = urlencode(query, safe="$", quote_via=quote)
    return f"{request.base_url}{quote(request.path, safe='/;')}?{encoded}"
