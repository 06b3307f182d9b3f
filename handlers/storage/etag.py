"""The one ETag-guarded read-modify-write of the app.

Two workers changing one entity never overwrite each other: the loser reads the winner's
version and applies its change again. After :data:`ATTEMPTS` conflicts in a row it stops and
raises :class:`~handlers.storage.errors.ContentionError` (nothing of its change is written),
so the delivery fails and the platform redelivers it. It never gives up silently.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from handlers.storage.errors import ContentionError

#: Conflicts in a row before giving up (each re-reads the entity).
ATTEMPTS = 16
#: Upper bound of the random pause after a conflict, seconds: spreads writers that collide.
_PAUSE = 0.02

Entity = dict[str, Any]
#: Changes the entity in place; returns False when there is nothing to write.
Change = Callable[[Entity], bool | None]


def guarded_update(
    table: TableClient,
    pk: str,
    rk: str,
    change: Change,
    *,
    initial: Entity | None = None,
    mode: UpdateMode = UpdateMode.REPLACE,
) -> Entity:
    """Apply ``change`` to the entity at ``pk``/``rk`` under ETag protection.

    :param initial: the entity to insert (after ``change``) when there is none; without it a
        missing entity raises ``ResourceNotFoundError``.
    :returns: the entity as written (or as read, when ``change`` returned False).
    :raises ContentionError: it kept changing for :data:`ATTEMPTS` attempts.
    """
    for attempt in range(ATTEMPTS):
        try:
            found = table.get_entity(pk, rk)
        except ResourceNotFoundError:
            if initial is None:
                raise
            entity = {**initial, "PartitionKey": pk, "RowKey": rk}
            if change(entity) is False:
                return entity
            try:
                table.create_entity(entity)
                return entity
            except ResourceExistsError:
                _pause(attempt)
                continue
        entity = dict(found)
        if change(entity) is False:
            return entity
        try:
            table.update_entity(
                entity,
                mode=mode,
                etag=found.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return entity
        except (ResourceModifiedError, ResourceNotFoundError):
            _pause(attempt)
    raise ContentionError(f"{table.table_name} {pk}/{rk} kept changing; retry later")


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0, _PAUSE * min(attempt + 1, 5)))
