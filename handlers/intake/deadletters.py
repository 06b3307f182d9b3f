"""Dead letters are not a graveyard: the events Event Grid gave up delivering, replayed.

Each dead-lettered event goes through the same path it would have taken: a VM deletion
(``ResourceDeleteSuccess``) through the VM-deleted path, anything else through the edge
parser and ``respond()`` (which rejects, with the reason, what it cannot use). Exactly once
still holds: a job already handled only counts as one more occurrence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers.core.outcome import Outcome
from handlers.intake.events import parse
from handlers.intake.vm_deleted import DELETE_EVENT, respond_to_deletion
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from handlers.storage import DeadLetter, DeadLetterBlob, DeadLetterStore

log = logging.getLogger("backup_responder.deadletters")


@dataclass(frozen=True)
class Replayed:
    """What replaying one dead-lettered event did, or why its blob's replay stopped at it
    (``error``; the blob's first event when the blob could not be read)."""

    letter: DeadLetter
    outcomes: tuple[Outcome, ...]
    error: str = ""


def _event_type(event: Any) -> str:
    if not isinstance(event, dict):
        return ""
    return str(event.get("eventType") or event.get("type") or "")


def replay_event(runtime: Runtime, letter: DeadLetter) -> tuple[Outcome, ...]:
    """Deliver one dead-lettered event again, the way it was first meant to go."""
    if _event_type(letter.event) == DELETE_EVENT:
        return tuple(respond_to_deletion(runtime, letter.event))
    return (respond(runtime, parse(letter.event)),)


def replay(
    runtime: Runtime, store: DeadLetterStore, blobs: list[DeadLetterBlob]
) -> Iterator[Replayed]:
    """Replay every event of ``blobs`` and mark each blob replayed once all its events went
    through. A blob whose replay raised (a live claim, storage or Azure failing) stops at that
    event, is reported with the error and stays unmarked, to be replayed again; the next blob
    is replayed all the same."""
    for blob in blobs:
        letter = DeadLetter(blob.name, 0, None)
        try:
            for letter in store.events(blob.name):
                yield Replayed(letter, replay_event(runtime, letter))
            store.mark_replayed(blob.name, datetime.now(UTC))
        except Exception as error:  # one blob never stops the others
            message = f"{type(error).__name__}: {error}"
            log.error("dead letter %s[%d] not replayed: %s", blob.name, letter.index, message)
            yield Replayed(letter, (), message)
