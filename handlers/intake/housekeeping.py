"""Housekeeping timers: claims of handled jobs are forgotten after ``CLAIM_RETENTION_DAYS``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from handlers.pipeline.runtime import Runtime

log = logging.getLogger("backup_responder.housekeeping")
#: Claims removed per run at most (the timer runs hourly).
EXPIRY_BATCH = 5_000


def expire_claims(runtime: Runtime, now: datetime | None = None) -> int:
    """Remove at most :data:`EXPIRY_BATCH` expired claims; returns how many."""
    removed = runtime.storage.claims.expire(now or datetime.now(UTC), EXPIRY_BATCH)
    log.info("removed %d expired job claim(s)", removed)
    return removed
