"""From raw HTTP request to reply: authentication, api-version, routing, faults, call log."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.utils import case_insensitive_dict

from sandbox.simulator.faults import FaultInjector
from sandbox.simulator.protocol import ArmError, Call, Request, Response
from sandbox.simulator.routing import Router
from sandbox.simulator.shapes import CANONICAL, header_lines
from sandbox.simulator.state import SimState

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """An encoded HTTP answer.

    :ivar status: status code.
    :ivar headers: response headers (the server adds ``Server``, ``Date`` and ``Content-Length``).
    :ivar body: the encoded body.
    :ivar header_case: how header names are written, see :func:`header_lines`.
    """

    status: int
    headers: dict[str, str]
    body: bytes
    header_case: str = CANONICAL

    def wire_headers(self, server_headers: Mapping[str, str]) -> list[tuple[str, str]]:
        """Every header to send, names in :attr:`header_case`.

        :param server_headers: the server's own headers, sent first (``Server``, ``Date``).
        """
        length = {"Content-Length": str(len(self.body))}
        merged = {**server_headers, **self.headers, **length}
        return header_lines(merged.items(), self.header_case)


class Dispatcher:
    """Turns requests into replies and keeps the call log.

    :param state: the simulated resources.
    :param router: the routes.
    :param faults: the fault queue.
    """

    def __init__(self, state: SimState, router: Router, faults: FaultInjector) -> None:
        self._state = state
        self._router = router
        self._faults = faults
        self._calls: list[Call] = []
        self._calls_lock = threading.Lock()

    @property
    def calls(self) -> list[Call]:
        """The requests received so far (a copy)."""
        with self._calls_lock:
            return list(self._calls)

    def clear_calls(self) -> None:
        """Forget the call log."""
        with self._calls_lock:
            self._calls.clear()

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes, base_url: str
    ) -> Reply | None:
        """Answer one request.

        :param method: HTTP method.
        :param target: the request target (path and query).
        :param headers: request headers.
        :param raw_body: request body bytes.
        :param base_url: ``https://host:port`` of the server.
        :return: the reply, or ``None`` when a ``drop`` fault says to close the connection.
        """
        url = urlsplit(target)
        header_case = self._state.header_case
        request = Request(
            method=method,
            path=unquote(url.path),
            query={key: values[0] for key, values in parse_qs(url.query).items()},
            headers=case_insensitive_dict(headers),
            body=None,
            base_url=base_url,
        )
        route_name = ""
        try:
            _authenticate(request)
            if request.api_version is None:
                raise ArmError(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            route, params = self._router.resolve(method, request.path)
            route_name = route.name
            route.check_api_version(request.api_version)
            request = _with_body(request, raw_body)
            if not self._apply_fault(route.name):
                self._record(request, route_name, 0)
                return None
            with self._state.lock:
                response = route.handler(self._state, request, params)
                reply = _encode(response, request, header_case)
        except ArmError as error:
            reply = _encode(self._state.renderer.error(error), request, header_case)
        except Exception:
            _LOG.exception("simulator handler failed on %s %s", method, target)
            error = ArmError(500, "InternalServerError", "Simulator error.")
            reply = _encode(self._state.renderer.error(error), request, header_case)
        self._record(request, route_name, reply.status)
        return reply

    def _apply_fault(self, route_name: str) -> bool:
        """Apply the next fault queued for the route.

        :return: ``False`` when the connection must be dropped.
        :raises ArmError: for the error kinds.
        """
        fault = self._faults.take(route_name)
        if fault is None:
            return True
        if fault.kind == "drop":
            return False
        error = fault.error()
        if error is not None:
            raise error
        time.sleep(fault.delay)
        return True

    def _record(self, request: Request, route_name: str, status: int) -> None:
        call = Call(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            body=request.body,
            headers=dict(request.headers.items()),
            route=route_name,
            status=status,
            api_version=request.api_version,
        )
        with self._calls_lock:
            self._calls.append(call)


def _authenticate(request: Request) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or is not a bearer "
            "token.",
        )


def _with_body(request: Request, raw_body: bytes) -> Request:
    if not raw_body.strip():
        return request
    try:
        body = json.loads(raw_body)
    except ValueError as exc:
        raise ArmError(
            400, "InvalidRequestContent", "The request content was invalid and could not be parsed."
        ) from exc
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return dataclasses.replace(request, body=body)


def _encode(response: Response, request: Request, header_case: str) -> Reply:
    headers = {
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id")
        or str(uuid.uuid4()),
        "Cache-Control": "no-cache",
        "Pragma": "no-cache",
        "Expires": "-1",
    }
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id:
        headers["x-ms-client-request-id"] = client_request_id
    body = b""
    if response.body is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
        body = json.dumps(response.body).encode()
    headers.update(response.headers)
    return Reply(response.status, headers, body, header_case)
