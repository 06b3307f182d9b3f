"""HTTPS plumbing: a threading HTTP/1.1 server on 127.0.0.1 whose sockets are wrapped in TLS."""

from __future__ import annotations

import socket
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.simulator.dispatch import Dispatcher

# Bounds the TLS handshake and idle keep-alive connections, so stray clients cannot pin threads.
_IO_TIMEOUT_SECONDS = 30.0


class TLSServer(ThreadingHTTPServer):
    """Serves the dispatcher over TLS on a random free port of 127.0.0.1.

    :param dispatcher: answers the requests.
    :param context: a server-side TLS context with the certificate loaded.
    """

    daemon_threads = True
    # Clients may keep connections open; closing must not wait for their threads.
    block_on_close = False

    def __init__(self, dispatcher: Dispatcher, context: ssl.SSLContext) -> None:
        self.dispatcher = dispatcher
        self._context = context
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT``."""
        host, port = self.server_address[:2]
        return f"https://{host!s}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Do the TLS handshake in the connection's own thread, then serve it."""
        request.settimeout(_IO_TIMEOUT_SECONDS)
        try:
            connection = self._context.wrap_socket(request, server_side=True)
        except OSError:
            return  # handshake refused, e.g. by a client that does not trust the CA
        with connection:
            self.RequestHandlerClass(connection, client_address, self)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle would hold the body ~40 ms per request.
    disable_nagle_algorithm = True
    server: TLSServer

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_PATCH = do_GET  # noqa: N815 - http.server naming

    def log_message(self, *_args: Any) -> None:
        """Stay quiet; the dispatcher keeps the call log."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        reply = self.server.dispatcher.handle(
            self.command, self.path, dict(self.headers.items()), raw_body, self.server.base_url
        )
        if reply is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response_only(reply.status)
        # Written here rather than by send_response(), so that header_case applies to them too.
        own = {"Server": self.version_string(), "Date": self.date_time_string()}
        for name, value in reply.wire_headers(own):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)
