"""Azure call failures sorted into kinds, so each caller knows how to react.

Every management call runs through :func:`call` (or :func:`call_list` for a paged listing).
The SDK clients already time out and retry (honouring ``Retry-After``); what still fails is
raised as :class:`AzureCallError`, whose ``kind`` is one of :class:`ErrorKind`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)


class ErrorKind:
    """How an Azure call failed for good."""

    #: 401/403, or a Resource Guard (Multi-User Authorization) denial: a person must act.
    DENIED = "denied"
    #: Throttled, 5xx, timeouts, dropped connections: try again later.
    UNAVAILABLE = "unavailable"
    #: The service answered 4xx with a reason (400, 409…): it will not do it.
    REFUSED = "refused"
    #: 404: the resource (or its resource group) does not exist.
    NOT_FOUND = "not_found"


class AzureCallError(RuntimeError):
    """An Azure call that failed for good; ``kind`` (an :class:`ErrorKind`) says how to react."""

    def __init__(self, kind: str, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{kind}: {code or status}: {message}")
        self.kind, self.code, self.status = kind, code, status


def kind_of(status: int | None, code: str) -> str:
    """The :class:`ErrorKind` of an answer with ``status`` and service error ``code``.

    >>> kind_of(400, "ResourceGuardOperationDenied"), kind_of(429, ""), kind_of(409, "X")
    ('denied', 'unavailable', 'refused')
    """
    # A Resource Guard (Multi-User Authorization) denial is a person's decision, whatever
    # status carries it.
    if status in (401, 403) or "resourceguard" in code.lower():
        return ErrorKind.DENIED
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status is None or status == 429 or status >= 500:
        return ErrorKind.UNAVAILABLE
    return ErrorKind.REFUSED


def _error_code(error: HttpResponseError) -> str:
    odata = getattr(error, "error", None)
    return getattr(odata, "code", "") or ""


def call(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call; turn what fails into an :class:`AzureCallError`."""
    try:
        return operation(*args, **kwargs)
    except HttpResponseError as error:
        status, code = error.status_code, _error_code(error)
        message = (getattr(error, "message", "") or str(error)).splitlines()[0][:500]
        raise AzureCallError(kind_of(status, code), code, message, status) from error
    except (ServiceRequestError, ServiceResponseError) as error:
        raise AzureCallError(ErrorKind.UNAVAILABLE, "", str(error)[:500]) from error
    except AzureError as error:  # e.g. a polling timeout
        raise AzureCallError(ErrorKind.UNAVAILABLE, "", str(error)[:500]) from error


def call_list(operation: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    """Like :func:`call`, for a paged listing: every page is read inside the guard."""
    return call(lambda: list(operation(*args, **kwargs)))
