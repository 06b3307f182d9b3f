"""The one factory for the Azure management clients: Backup, Compute, vault lists.

In Azure every client authenticates with the app's managed identity
(``DefaultAzureCredential``) against the public endpoints. In the sandbox and the tests the
same SDK clients are pointed at the local simulator by settings: ``AZURE_MANAGEMENT_URL``,
``AZURE_STATIC_TOKEN`` and ``AZURE_CA_BUNDLE``. Every client gets timeouts and a bounded
retry (azure-core honours ``Retry-After`` on 429 and 503), and every read it sends is paced
per subscription under ARM's read refill rate (:mod:`handlers.azure.pacing`); the waits of both
go through one injectable :class:`~handlers.azure.pacing.PaceClock`.

The management SDKs are imported on first use: a cold start that only records an incident
never pays for them.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import cached_property
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential

from handlers.azure.pacing import PaceClock, ReadPacer, ReadPacingPolicy
from handlers.core.settings import Settings

#: Per-request limits for every Azure call (seconds, attempts).
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
RETRIES = 3
BACKOFF_FACTOR = 0.8
BACKOFF_MAX = 30
#: Client options that belong to the shared transport, not to each client.
_CONNECTION_OPTIONS = frozenset({"connection_timeout", "read_timeout"})
#: Management clients kept at most (three kinds per subscription); they share one transport.
MAX_CLIENTS = 96
#: Connections kept per host: the watcher's vault listers and detail readers at once.
POOL_CONNECTIONS = 32


def _session() -> Any:
    """The transport's ``requests`` session: as azure-core makes it (no retries of its own:
    the retry policy decides), with a pool for every concurrent reader of the watcher."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    adapter = HTTPAdapter(
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
        pool_maxsize=POOL_CONNECTIONS,
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return session


class StaticTokenCredential(TokenCredential):
    """A fixed bearer token, for the local simulator only (``AZURE_STATIC_TOKEN``)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:  # never show the token in logs or tracebacks
        return "StaticTokenCredential(***)"


class AzureClients:
    """Builds and caches the SDK clients for one set of settings.

    :param client_options: extra keyword arguments for the management clients, e.g.
        ``{"polling_interval": 0}`` in tests (the simulator answers at once).
    :param clock: the clock and sleep of read pacing and of the retry policy's waits (a
        simulated one in tests and benchmarks); the monotonic clock by default.
    """

    def __init__(
        self,
        settings: Settings,
        client_options: dict[str, Any] | None = None,
        clock: PaceClock | None = None,
    ) -> None:
        self.settings = settings
        self._options = client_options or {}
        self.clock = clock or PaceClock()
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._pacers: dict[str, ReadPacer] = {}
        self._lock = threading.Lock()

    def pacer(self, subscription_id: str) -> ReadPacer:
        """The read bucket of one subscription (ARM throttles per principal and subscription);
        kept for the life of the process, whatever clients come and go."""
        key = subscription_id.lower()
        with self._lock:
            if key not in self._pacers:
                self._pacers[key] = ReadPacer(
                    self.settings.arm_reads_per_second, self.settings.arm_read_burst, self.clock
                )
            return self._pacers[key]

    @cached_property
    def credential(self) -> TokenCredential:
        if self.settings.static_token:
            return StaticTokenCredential(self.settings.static_token)
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(
            managed_identity_client_id=self.settings.managed_identity_client_id or None
        )

    @property
    def polling_interval(self) -> float:
        """Seconds between polls of a long-running operation that gives no ``Retry-After``."""
        return float(self._options.get("polling_interval", self.settings.azure_poll_seconds))

    @cached_property
    def transport(self) -> Any:
        """The one HTTP transport (connection pool) of every management client: clients are
        per subscription, sockets are not."""
        from azure.core.pipeline.transport import RequestsTransport

        clock = self.clock

        class Transport(RequestsTransport):
            def sleep(self, duration: float) -> None:
                """The retry policy's waits (``Retry-After``, backoff) on the pacing clock."""
                clock.sleep(duration)

        connection = {"connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
        connection.update((k, v) for k, v in self._options.items() if k in _CONNECTION_OPTIONS)
        return Transport(
            session=_session(),
            connection_verify=self.settings.ca_bundle or True,
            **connection,
        )

    def _management(self, kind: str, subscription_id: str, factory: Any) -> Any:
        key = (kind, subscription_id.lower())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        client = factory(
            self.credential,
            subscription_id,
            base_url=self.settings.management_url,
            **{
                "polling_interval": self.settings.azure_poll_seconds,
                "retry_total": RETRIES,
                "retry_backoff_factor": BACKOFF_FACTOR,
                "retry_backoff_max": BACKOFF_MAX,
                "transport": self.transport,
                "per_retry_policies": [ReadPacingPolicy(self.pacer(subscription_id))],
                **{k: v for k, v in self._options.items() if k not in _CONNECTION_OPTIONS},
            },
        )
        with self._lock:
            self._cache[key] = client
            while len(self._cache) > MAX_CLIENTS:  # many subscriptions: the least used go
                self._cache.popitem(last=False)
        return client

    def backup(self, subscription_id: str) -> Any:
        """``RecoveryServicesBackupClient`` for one subscription."""
        from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

        return self._management("backup", subscription_id, RecoveryServicesBackupClient)

    def compute(self, subscription_id: str) -> Any:
        """``ComputeManagementClient`` for one subscription."""
        from azure.mgmt.compute import ComputeManagementClient

        return self._management("compute", subscription_id, ComputeManagementClient)

    def storage(self, subscription_id: str) -> Any:
        """``StorageManagementClient`` (storage accounts, file shares) for one subscription."""
        from azure.mgmt.storage import StorageManagementClient

        return self._management("storage", subscription_id, StorageManagementClient)

    def vaults(self, subscription_id: str) -> Any:
        """``RecoveryServicesClient`` (vault listing) for one subscription."""
        from azure.mgmt.recoveryservices import RecoveryServicesClient

        return self._management("vaults", subscription_id, RecoveryServicesClient)

    def counting(self, hook: Callable[[Any], None]) -> AzureClients:
        """New clients with these settings and options whose every request (retries, pages and
        polls included) is first passed to ``hook`` (see :mod:`handlers.azure.budget`), on the
        same clock and read buckets (a run's pace and time are the process's)."""
        counted = AzureClients(
            self.settings, {**self._options, "raw_request_hook": hook}, self.clock
        )
        counted._pacers, counted._lock = self._pacers, self._lock
        return counted
