"""Outgoing HTTP to ticket systems and chat webhooks: timeouts, bounded retries, no secrets.

Only answers that say the request was not processed (429, 503, connection refused) are
retried, so a retry never opens a second ticket. Errors never carry the URL (webhook URLs
embed their secret) or the credentials.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

TIMEOUT = (5, 20)  # connect, read (seconds)
_RETRY = Retry(
    total=3,
    connect=3,
    read=0,
    status=3,
    status_forcelist=(429, 503),
    allowed_methods=None,  # POST too: these statuses mean the request was not processed
    backoff_factor=0.5,
    respect_retry_after_header=True,
    raise_on_status=False,
)


class SinkError(RuntimeError):
    """A sink refused or could not be reached; the message is safe to record.

    :ivar status: the sink's HTTP status, when it answered.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def refused(self) -> bool:
        """The sink answered and will not do it (a 4xx other than a timeout or throttling):
        asking again changes nothing."""
        transient = (408, 429)
        return self.status is not None and 400 <= self.status < 500 and self.status not in transient


def session() -> requests.Session:
    """A session with the retry policy mounted; reuse it for connection pooling."""
    http = requests.Session()
    adapter = HTTPAdapter(max_retries=_RETRY)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


def send(http: requests.Session, method: str, url: str, name: str, **kwargs: Any) -> Any:
    """Send one request; return the JSON answer (or None); raise :class:`SinkError`.

    :param name: the sink's name for error messages (never the URL).
    """
    try:
        response = http.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as error:
        raise SinkError(f"{name}: {type(error).__name__}") from None
    if response.status_code >= 400:
        raise SinkError(f"{name}: HTTP {response.status_code}", response.status_code)
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None
