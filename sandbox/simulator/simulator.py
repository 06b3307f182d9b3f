"""The public facade: a stateful local HTTPS stand-in for Azure Backup, Compute and vault lists."""

from __future__ import annotations

import os
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType

import trustme

from sandbox.simulator.dispatch import Dispatcher
from sandbox.simulator.faults import FaultInjector
from sandbox.simulator.protocol import Call
from sandbox.simulator.routes import ROUTER
from sandbox.simulator.server import TLSServer
from sandbox.simulator.state import SimState

# How often the serving loop checks for stop(); bounds how long stop() takes.
_SHUTDOWN_POLL_SECONDS = 0.05


class AzureSimulator(SimState):
    """Simulated Azure resources served over TLS to the real SDK clients.

    Point a client at it with ``base_url=sim.base_url``, ``connection_verify=sim.ca_pem_path``
    and a :class:`~sandbox.simulator.credential.StaticCredential`::

        with AzureSimulator() as sim:
            vault = sim.add_vault(SUB, "rg-backup", "vault1")

    The seed helpers and switches (``page_size``, ``auto_complete_backups``, ``clock`` ...) come
    from :class:`~sandbox.simulator.state.SimState`.

    :ivar faults: queue faults per route, see :class:`~sandbox.simulator.faults.FaultInjector`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.faults = FaultInjector(ROUTER.names)
        self._dispatcher = Dispatcher(self, ROUTER, self.faults)
        self._server: TLSServer | None = None
        self._thread: threading.Thread | None = None
        self._ca_pem: Path | None = None

    def __enter__(self) -> AzureSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> AzureSimulator:
        """Create a fresh CA and certificate and start serving on a random free port.

        :return: ``self``.
        :raises RuntimeError: if it is running already.
        """
        if self._server is not None:
            raise RuntimeError("the simulator is running already")
        authority = trustme.CA()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        descriptor, name = tempfile.mkstemp(prefix="azure-simulator-ca-", suffix=".pem")
        os.close(descriptor)
        self._ca_pem = Path(name)
        authority.cert_pem.write_to_path(str(self._ca_pem))
        self._server = TLSServer(self._dispatcher, context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="azure-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete the CA file; safe to call twice."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._ca_pem is not None:
            self._ca_pem.unlink(missing_ok=True)
            self._ca_pem = None

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``.

        :raises RuntimeError: if it is not running.
        """
        return self._running().base_url

    @property
    def ca_pem_path(self) -> str:
        """Path of the CA certificate (PEM) to trust, for ``connection_verify``.

        :raises RuntimeError: if it is not running.
        """
        self._running()
        return str(self._ca_pem)

    @property
    def calls(self) -> list[Call]:
        """Every request received since start or :meth:`reset` (a copy)."""
        return self._dispatcher.calls

    def calls_to(self, route: str | None = None, method: str | None = None) -> list[Call]:
        """The calls to a route and/or with a method.

        :param route: a route name such as ``"backup_trigger"``; ``None`` for any.
        :param method: an HTTP method; ``None`` for any.
        """
        return [
            call
            for call in self.calls
            if (route is None or call.route == route)
            and (method is None or call.method == method.upper())
        ]

    def reset(self) -> None:
        """Forget resources, calls and faults, and restore the default switches."""
        super().reset()
        self._dispatcher.clear_calls()
        self.faults.clear()

    def _running(self) -> TLSServer:
        if self._server is None:
            raise RuntimeError("the simulator is not running; use start() or a with block")
        return self._server
