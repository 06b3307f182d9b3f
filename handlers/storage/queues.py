"""The retry queue: delayed retry attempts and follow-up checks (Storage queue, base64)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

log = logging.getLogger("backup_responder.storage")
T = TypeVar("T")

#: The longest visibility delay the Queue service accepts: 7 days.
MAX_DELAY_SECONDS = 7 * 86_400


class RetryQueue:
    """Messages of the ``run_retry`` queue trigger.

    :param client: a ``QueueClient`` with base64 encoding (what the trigger expects).
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._created = False
        self._recreated = False

    def _ensure(self) -> None:
        if not self._created:
            with contextlib.suppress(ResourceExistsError):
                self._client.create_queue()
            self._created = True

    def _healing(self, operation: Callable[[], T]) -> T:
        """Run ``operation``; when the queue is gone, create it again (warning once) and rerun."""
        self._ensure()
        try:
            return operation()
        except ResourceNotFoundError as error:
            if "QueueNotFound" not in f"{getattr(error, 'error_code', '')} {error}":
                raise
            if not self._recreated:
                self._recreated = True
                log.warning("queue %s was missing (storage lost?); created it again", self.name)
            with contextlib.suppress(ResourceExistsError):
                self._client.create_queue()
            return operation()

    @property
    def name(self) -> str:
        return str(self._client.queue_name)

    def send(self, body: str, delay_seconds: int) -> None:
        """Enqueue ``body``, visible after ``delay_seconds`` (at most 7 days)."""
        delay = max(0, min(delay_seconds, MAX_DELAY_SECONDS))
        self._healing(lambda: self._client.send_message(body.encode(), visibility_timeout=delay))

    def receive(self, max_messages: int | None = None, visibility_seconds: int = 30) -> list[Any]:
        """Take visible messages, hidden for ``visibility_seconds`` (what the Functions host
        does for the trigger; tests and tools play the host with it)."""
        self._ensure()
        page = min(max_messages or 32, 32)
        return list(
            self._client.receive_messages(
                max_messages=max_messages,
                messages_per_page=page,
                visibility_timeout=visibility_seconds,
            )
        )

    def delete(self, message: Any) -> None:
        self._client.delete_message(message)

    def approximate_count(self) -> int:
        """Messages in the queue (visible or not), as the service estimates; 0 for a queue
        not made yet (reading never creates it)."""
        try:
            return int(self._client.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:
            return 0

    def peek_existing(self, count: int = 32) -> list[Any]:
        """Visible messages without taking them; none for a queue not made yet."""
        try:
            return list(self._client.peek_messages(max_messages=count))
        except ResourceNotFoundError:
            return []

    def peek(self, count: int = 32) -> list[Any]:
        """Messages without taking them (visible ones only)."""
        return self._healing(lambda: list(self._client.peek_messages(max_messages=count)))
