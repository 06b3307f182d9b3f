"""What the replay tests share (``tests/test_replay.py``, ``tests/test_replay_workloads.py``):
the transport that answers from Azure's payload files, its fixtures, and how a file is served.

How files are served: a recorded file with ``status`` is served with its status, headers (as
recorded, lower case) and body; a file that is only a body is served as a 200 with no header
at all (none was recorded; the SDK must not need one); a published example serves
``responses[status]`` (``Retry-After`` written as text, as on the wire). Keys starting with
``_`` in recorded files are the transcriber's notes, not Azure's, and are not served. Where a
body is served at another URL than the one it was recorded at, the test says so.

Each test module reads files through its own :class:`Payloads`, which refuses a file the module
does not name in its ``REPLAYED`` set, so the completeness check
(``test_replay.py::test_every_payload_is_replayed_or_listed``) sees every file a test uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from requests.structures import CaseInsensitiveDict

from handlers.azure.clients import AzureClients
from handlers.core.settings import Settings
from sandbox.simulator.payloads import load

ARM = "https://management.azure.com"

# ---------------------------------------------------------------------------------------------
# The transport


@dataclass(frozen=True)
class Answer:
    """One recorded response."""

    status: int
    headers: dict[str, str]
    body: Any  # a JSON value, or "" for an empty body
    source: str  # the payload file


@dataclass(frozen=True)
class Sent:
    """One request our code sent."""

    method: str
    url: str
    body: Any  # parsed JSON, or None

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.url).path)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


def _path_key(url_or_path: str) -> str:
    return unquote(urlsplit(url_or_path).path).lower()


class Replay(HttpTransport):
    """An azure-core transport that answers from recorded responses, never from the network.

    A request is matched by method and path (any case, ``%3B`` or ``;`` alike, the query ignored).
    A route's answers are given in order; its last answer repeats. Every request is kept in
    ``sent`` and the file that answered it in ``answered_by``; a request without an answer fails
    the test at once (and is kept in ``unanswered``, which the fixture checks too, in case
    something swallowed the failure). ``sleep`` (what the poller and the retry policy call) only
    records the delay.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.sent: list[Sent] = []
        self.answered_by: list[str] = []
        self.unanswered: list[Sent] = []
        self.sleeps: list[float] = []

    def on(self, method: str, url_or_path: str, *answers: Answer) -> None:
        assert answers, "a route needs an answer"
        self.routes[(method.upper(), _path_key(url_or_path))] = list(answers)

    def send(self, request: Any, **kwargs: Any) -> Any:
        sent = Sent(request.method.upper(), request.url, _json_body(request))
        self.sent.append(sent)
        answers = self.routes.get((sent.method, _path_key(sent.url)))
        if not answers:
            self.unanswered.append(sent)
            pytest.fail(f"Replay has no answer for {sent.method} {sent.url}", pytrace=False)
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        self.answered_by.append(answer.source)
        raw = requests.Response()
        raw.status_code = answer.status
        raw.reason = HTTPStatus(answer.status).phrase
        raw.headers = CaseInsensitiveDict(answer.headers)
        raw._content = b"" if answer.body == "" else json.dumps(answer.body).encode()
        raw._content_consumed = True
        raw.url = request.url
        if hasattr(request, "content"):  # azure.core.rest.HttpRequest: what the SDKs send
            # What RequestsTransport.send does for these requests (azure-core 1.41).
            from azure.core.rest._requests_basic import RestRequestsTransportResponse

            response = RestRequestsTransportResponse(request=request, internal_response=raw)
            if not kwargs.get("stream"):
                response.read()
                response.close()
            return response
        return RequestsTransportResponse(request, raw)

    def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def calls(self, method: str, path_part: str = "") -> list[Sent]:
        """The requests sent with ``method`` whose URL contains ``path_part`` (any case)."""
        return [s for s in self.sent if s.method == method and path_part.lower() in s.url.lower()]


def _json_body(request: Any) -> Any:
    content = getattr(request, "content", None)
    if content is None:
        content = getattr(request, "data", None)
    if not content:
        return None
    return json.loads(content)


@pytest.fixture(name="replay")
def replay_fixture() -> Iterator[Replay]:
    """The transport; import this function into a test module to use the ``replay`` fixture."""
    transport = Replay()
    yield transport
    assert not transport.unanswered, f"requests without an answer: {transport.unanswered}"
    assert not [s for s in transport.sent if s.method == "DELETE"], "a DELETE was sent"


@pytest.fixture(name="clients")
def clients_fixture(replay: Replay) -> AzureClients:
    """Our SDK clients on the ``replay`` transport (no retries, no polling delay)."""
    settings = Settings(management_url=ARM, static_token="t")
    return AzureClients(settings, {"transport": replay, "polling_interval": 0, "retry_total": 0})


# ---------------------------------------------------------------------------------------------
# Paths

# Path templates of the REST specification, filled from an example's ``parameters``.
_GROUP = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers"
VAULT_PATH = _GROUP + "/Microsoft.RecoveryServices/vaults/{vaultName}"
JOB_PATH = VAULT_PATH + "/backupJobs/{jobName}"
CONTAINER_PATH = VAULT_PATH + "/backupFabrics/{fabricName}/protectionContainers/{containerName}"
ITEM_PATH = CONTAINER_PATH + "/protectedItems/{protectedItemName}"
VAULTS_PATH = "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/vaults"
VM_PATH = _GROUP + "/Microsoft.Compute/virtualMachines/{vmName}"
VMS_PATH = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/virtualMachines"
ACCOUNT_PATH = _GROUP + "/Microsoft.Storage/storageAccounts/{accountName}"
SHARES_PATH = ACCOUNT_PATH + "/fileServices/default/shares"

# The Azure CLI's recordings: their subscription ids are zeros (the recorder's sanitizer).
CLI_SUB = "00000000-0000-0000-0000-000000000000"


def spec_path(template: str, parameters: dict[str, Any]) -> str:
    return template.format(**parameters)


def lro_item_path(status_url: str) -> str:
    """The item path in Azure's operation URL (``…/protectedItems/{i}/operationsStatus/…``)."""
    return re.split(r"/operation(?:sStatus|Results)/", urlsplit(status_url).path, flags=re.I)[0]


# ---------------------------------------------------------------------------------------------
# Times

#: Azure's ISO form of a request's expiry (the CLI's to the millisecond, ours to the microsecond).
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,7}Z$")


def azure_time(text: str) -> datetime:
    """Azure's ``yyyy-mm-ddThh:mm:ss[.fffffff]Z``, to the microsecond (the 7th digit cut)."""
    found = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,7}))?Z", text)
    assert found, f"not Azure's time form: {text!r}"
    moment = datetime.strptime(found[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment + timedelta(microseconds=int((found[2] or "0")[:6].ljust(6, "0")))


def optional_time(props: dict[str, Any], key: str) -> datetime | None:
    """``props[key]`` as a time, or None when Azure sent none."""
    return azure_time(props[key]) if key in props else None


# ---------------------------------------------------------------------------------------------
# The payload files and how they are served


def ok(name: str, body: Any) -> Answer:
    """A body (of a body-only file, or taken from one): a 200 with no header."""
    return Answer(200, {}, body, name)


def _without_notes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_notes(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [_without_notes(v) for v in value]
    return value


class Payloads:
    """The payload files one test module may use: those it names in its ``REPLAYED``."""

    def __init__(self, replayed: frozenset[str]) -> None:
        self.replayed = replayed

    def payload(self, name: str) -> Any:
        """A payload file (a fresh copy), without the transcriber's ``_`` notes."""
        assert name in self.replayed, f"{name} is used by a test but not in REPLAYED"
        document = load(name)
        return _without_notes(document) if name.startswith("recorded/") else document

    def body_file(self, name: str) -> Answer:
        """A body-only file, served whole."""
        return ok(name, self.payload(name))

    def recorded(self, name: str) -> Answer:
        """A recorded response: status, headers (lower case) and body as recorded."""
        document = self.payload(name)
        return Answer(document["status"], document.get("headers", {}), document["body"], name)

    def published(self, name: str, status: str = "200") -> Answer:
        """A response of a REST specification example."""
        response = self.payload(name)["responses"][status]
        headers = {k: str(v) for k, v in response.get("headers", {}).items()}
        return Answer(int(status), headers, response.get("body", ""), name)

    def body_of(self, name: str) -> Any:
        """The 200 body of a file: a specification example's, or the file itself."""
        document = self.payload(name)
        return document["responses"]["200"]["body"] if "responses" in document else document

    def readers(self) -> tuple[Callable[..., Any], ...]:
        """``payload, body_file, recorded, published, body_of``, for a module to name."""
        return self.payload, self.body_file, self.recorded, self.published, self.body_of
