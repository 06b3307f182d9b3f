"""Route matching: ARM path templates, matched case-insensitively on their fixed segments."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from sandbox.simulator.protocol import ArmError, Request, Response
from sandbox.simulator.state import SimState

Handler = Callable[[SimState, Request, Mapping[str, str]], Response]


@functools.cache
def compile_template(template: str) -> re.Pattern[str]:
    """Turn ``/subscriptions/{sub}/...`` into a regex with one named group per placeholder.

    :param template: an ARM path with ``{name}`` placeholders, each matching one segment.
    """
    parts = re.split(r"(\{\w+\})", template)
    regex = "".join(
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"{regex}/?", re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    """One operation of the simulated API.

    :ivar name: stable name used by faults and the call log.
    :ivar method: HTTP method.
    :ivar templates: ARM path templates it serves.
    :ivar api_versions: the ``api-version`` values accepted.
    :ivar handler: produces the response.
    """

    name: str
    method: str
    templates: Sequence[str]
    api_versions: Collection[str]
    handler: Handler

    def match(self, path: str) -> dict[str, str] | None:
        """The placeholder values if ``path`` fits one of the templates, else ``None``."""
        for template in self.templates:
            found = compile_template(template).fullmatch(path)
            if found is not None:
                return found.groupdict()
        return None

    def check_api_version(self, version: str) -> None:
        """:raises ArmError: 400 ``InvalidApiVersionParameter`` for an unsupported version."""
        if version not in self.api_versions:
            supported = ", ".join(sorted(self.api_versions))
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are "
                f"'{supported}'.",
            )


class Router:
    """Finds the route for a method and path.

    :param routes: the routes; names must be unique.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        names = [route.name for route in routes]
        if len(set(names)) != len(names):
            raise ValueError("route names must be unique")
        self._routes = tuple(routes)

    @property
    def names(self) -> frozenset[str]:
        """All route names."""
        return frozenset(route.name for route in self._routes)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and placeholder values for a request.

        :raises ArmError: 404 when no template fits, 405 when only the method is wrong.
        """
        path_known = False
        for route in self._routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method:
                return route, params
            path_known = True
        if path_known:
            raise ArmError(
                405, "MethodNotAllowed", f"The method '{method}' is not supported on '{path}'."
            )
        raise ArmError(
            404, "InvalidResourceType", f"The simulator serves no resource at path '{path}'."
        )
