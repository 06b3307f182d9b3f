"""Event Grid's dead letters: the events it gave up delivering, kept as blobs.

Event Grid writes them to the dead-letter container as
``{SUBSCRIPTION NAME}/{year}/{month}/{day}/{hour}/{guid}.json``, each blob a JSON array of one
or more events, each with what Event Grid adds (``deadLetterReason``, ``deliveryAttempts``,
``lastDeliveryOutcome``…; read case-insensitively, since the spelling differs between the
Event Grid and CloudEvents schemas). A blob replayed by ``backup-responder deadletter replay``
carries a ``replayed`` metadata entry (the blob itself is kept: it is the evidence).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

#: Metadata a replayed blob carries: when it was replayed.
REPLAYED = "replayed"
#: What Event Grid adds to a dead-lettered event (names as the Event Grid schema writes them).
_ADDED = ("deadLetterReason", "deliveryAttempts", "lastDeliveryOutcome", "publishTime")


@dataclass(frozen=True)
class DeadLetterBlob:
    """One blob of the dead-letter container."""

    name: str
    dead_lettered_at: datetime
    replayed_at: str = ""

    @property
    def subscription(self) -> str:
        """The Event Grid subscription whose events it holds (upper case, as Event Grid
        names the blob)."""
        return self.name.split("/", 1)[0]


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered event, with why Event Grid gave it up."""

    blob: str
    index: int
    event: Any
    why: dict[str, Any] = field(default_factory=dict)


def _added(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        return {}
    by_lower = {str(key).lower(): value for key, value in event.items()}
    return {name: by_lower[name.lower()] for name in _ADDED if name.lower() in by_lower}


class DeadLetterStore:
    """The dead-letter container (a ``ContainerClient``); a container not yet made holds
    nothing."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def blobs(self) -> list[DeadLetterBlob]:
        """Every blob, oldest first. A blob is dead-lettered when Event Grid created it: its
        last change is a replay's mark."""
        try:
            found = [
                DeadLetterBlob(b.name, b.creation_time, (b.metadata or {}).get(REPLAYED, ""))
                for b in self._container.list_blobs(include=["metadata"])
            ]
        except ResourceNotFoundError:
            return []
        return sorted(found, key=lambda b: b.dead_lettered_at)

    def events(self, blob: str) -> Iterator[DeadLetter]:
        """The events of one blob; a blob that is not a JSON array yields itself as one
        event (it is then rejected with the reason when replayed, never skipped)."""
        text = self._container.download_blob(blob).readall().decode("utf-8", "replace")
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = [text]
        for index, event in enumerate(body if isinstance(body, list) else [body]):
            yield DeadLetter(blob, index, event, _added(event))

    def mark_replayed(self, blob: str, at: datetime) -> None:
        """Note on the blob that it was replayed (its other metadata kept)."""
        client = self._container.get_blob_client(blob)
        metadata = dict(client.get_blob_properties().metadata or {})
        client.set_blob_metadata({**metadata, REPLAYED: at.isoformat(timespec="seconds")})
