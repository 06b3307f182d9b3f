"""The request, response, error and call-log types shared by the simulator's modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One decoded HTTP request, as the route handlers see it.

    :ivar method: HTTP method in upper case.
    :ivar path: URL path, percent-decoded (``%3B`` is already ``;``).
    :ivar query: query parameters, first value of each.
    :ivar headers: request headers.
    :ivar body: the parsed JSON body, or ``None`` when there was none.
    :ivar base_url: ``https://host:port`` of the simulator, for absolute URLs in responses.
    """

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: JsonObject | None
    base_url: str

    def param(self, name: str) -> str | None:
        """A query parameter by case-insensitive name (``$skipToken`` also comes as ``$skiptoken``).

        :param name: the parameter name.
        :return: its value, or ``None``.
        """
        wanted = name.lower()
        return next((value for key, value in self.query.items() if key.lower() == wanted), None)

    @property
    def api_version(self) -> str | None:
        """The ``api-version`` query parameter, or ``None``."""
        return self.param("api-version")


@dataclass
class Response:
    """What a route handler answers: a status, an optional JSON body and extra headers."""

    status: int
    body: JsonObject | None = None
    headers: dict[str, str] = field(default_factory=dict)


class ArmError(Exception):
    """An error answered by ARM itself (its gateway), before or instead of a resource provider.

    How the body looks depends on the shapes (see the renderers' ``error``).

    :param status: HTTP status code.
    :param code: ARM error code.
    :param message: human-readable message.
    :param headers: extra response headers (for example ``Retry-After``).
    :param failure_cause: the ``x-ms-failure-cause`` Azure sends with it (``"gateway"`` for
        ARM's own ResourceNotFound, as recorded in error_vault_get_404.json), if known.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        failure_cause: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.failure_cause = failure_cause


class BackupError(ArmError):
    """An error answered by the Recovery Services Backup provider (codes such as ``BMS…``).

    Azure's Backup provider fills more of ARM's error body than the gateway does
    (supplementary_error_bms_invalid_input_400.json), so the renderers tell them apart.
    """


def bad_request(message: str, code: str = "BadRequest") -> ArmError:
    """A 400 ARM error.

    :param message: what was wrong with the request.
    :param code: ARM error code.
    """
    return ArmError(400, code, message)


@dataclass(frozen=True)
class Call:
    """One request the simulator received, with the status it answered.

    :ivar method: HTTP method.
    :ivar path: percent-decoded URL path.
    :ivar query: query parameters (first value of each).
    :ivar body: parsed JSON body, or ``None``.
    :ivar headers: request headers.
    :ivar route: the route name (see :data:`sandbox.simulator.routes.ROUTE_NAMES`), or ``""``
        when no route matched.
    :ivar status: HTTP status answered; ``0`` when a ``drop`` fault closed the connection.
    :ivar api_version: the ``api-version`` query parameter, or ``None``.
    """

    method: str
    path: str
    query: dict[str, str]
    body: JsonObject | None
    headers: dict[str, str]
    route: str
    status: int
    api_version: str | None = None
