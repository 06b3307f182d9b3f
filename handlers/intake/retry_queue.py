"""The retry queue trigger (``run_retry``): one message in, the retry action on it.

A message is validated before anything is read: one that cannot be used, or that names an
incident that does not exist, is kept in the rejected-inputs table with the reason and
dropped (a log line says so); it never raises for ever, and never escalates an incident.
"""

from __future__ import annotations

import logging

from azure.core.exceptions import ResourceNotFoundError

from handlers.actions.retry import handle_message
from handlers.actions.retry_messages import MessageError, RetryMessage
from handlers.core.model import Rejection
from handlers.core.text import excerpt
from handlers.pipeline.runtime import Runtime

log = logging.getLogger("backup_responder.retry_queue")
SOURCE = "retry-queue"


def run_retry(runtime: Runtime, body: str, dequeue_count: int, queue_message_id: str) -> None:
    """Entry of ``run_retry``: handle one retry-queue message (``queue_message_id`` is the
    queue's own id of it: a redelivery of the same message has the same one)."""
    try:
        message = RetryMessage.from_json(body)
    except MessageError as error:
        _drop(runtime, body, f"retry message unusable: {error}")
        return
    try:
        handle_message(runtime, message, dequeue_count, queue_message_id)
    except ResourceNotFoundError:
        if runtime.storage.incidents.exists(message.pk, message.rk):
            raise
        _drop(runtime, body, f"retry message for an incident that does not exist ({message.rk})")


def _drop(runtime: Runtime, body: str, reason: str) -> None:
    log.warning("%s; the message is dropped and kept as rejected", reason)
    runtime.storage.rejections.record(Rejection(reason, SOURCE, excerpt(body)))
