"""ARM list pages: ``{"value": [...], "nextLink": ...}`` with an absolute ``$skipToken`` link."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode

from sandbox.simulator.protocol import JsonObject, Request, Response, bad_request

SKIP_TOKEN = "$skipToken"


def paginate(request: Request, docs: Sequence[JsonObject], page_size: int) -> Response:
    """The page of ``docs`` the request's ``$skipToken`` points at.

    :param request: the list request; its other query parameters are kept in ``nextLink``.
    :param docs: every matching document, in order.
    :param page_size: documents per page.
    :raises ArmError: 400 for a malformed ``$skipToken``.
    """
    token = request.param(SKIP_TOKEN)
    if token is not None and not token.isdigit():
        raise bad_request(f"Invalid {SKIP_TOKEN} '{token}'.")
    start = int(token or 0)
    end = start + page_size
    body: JsonObject = {"value": list(docs[start:end])}
    if end < len(docs):
        body["nextLink"] = _next_link(request, end)
    return Response(200, body)


def _next_link(request: Request, offset: int) -> str:
    query = {key: value for key, value in request.query.items() if key.lower() != "$skiptoken"}
    query[SKIP_TOKEN] = str(offset)
    encoded = urlencode(query, safe="$", quote_via=quote)
    return f"{request.base_url}{quote(request.path, safe='/;')}?{encoded}"
