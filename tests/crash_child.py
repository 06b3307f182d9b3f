"""A Function App instance that dies (SIGKILL, as ``kill -9``) at a named point.

``python -m tests.crash_child POINT`` reads ``{"settings": {...}, "call": ..., "args": ...}``
as JSON on stdin, builds the runtime from those settings, arranges for the process to kill
itself with SIGKILL at ``POINT`` (right after the named call returns: the side effect has
happened, nothing after it has), and makes the call. The test that started it then plays the
platform: it redelivers, in its own process, and checks what the world holds.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from handlers.core.settings import Settings

#: Where an instance can die: the call after which it is killed.
POINTS: dict[str, tuple[str, str]] = {
    "servicenow-open": ("handlers.outbound.sinks", "ServiceNowSink.open"),
    "devops-open": ("handlers.outbound.sinks", "AzureDevOpsSink.open"),
    "backup-trigger": ("handlers.azure.backup", "ItemApi.trigger_backup"),
    "retry-enqueue": ("handlers.actions.retry", "enqueue"),
    "protection-put": ("handlers.azure.backup", "ItemApi.stop_protection"),
}


def _die_after(call: Callable[..., Any]) -> Callable[..., Any]:
    def then_die(*args: Any, **kwargs: Any) -> Any:
        call(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    return then_die


def arm(point: str) -> None:
    """Make the process die right after the call named by ``point`` returns."""
    import importlib

    module_name, qualified = POINTS[point]
    owner: Any = importlib.import_module(module_name)
    *path, name = qualified.split(".")
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, name, _die_after(getattr(owner, name)))


def settings_of(values: dict[str, Any]) -> Settings:
    values = dict(values)
    values["subscription_ids"] = frozenset(values.get("subscription_ids", ()))
    return Settings(**values)


def main(point: str) -> None:
    from handlers.intake.events import parse
    from handlers.intake.retry_queue import run_retry
    from handlers.intake.vm_deleted import handle_vm_deleted
    from handlers.pipeline.respond import respond
    from handlers.pipeline.runtime import Runtime
    from tests.conftest import FAST_CLIENTS
    from tests.world import as_trigger_input

    job = json.load(sys.stdin)
    runtime = Runtime.from_settings(settings_of(job["settings"]), FAST_CLIENTS)
    arm(point)
    if job["call"] == "respond":
        respond(runtime, parse(job["event"]))
    elif job["call"] == "vm_deleted":
        handle_vm_deleted(runtime, as_trigger_input(job["event"]))
    elif job["call"] == "approve":
        from handlers.actions.approval import decide

        incident = runtime.storage.find_incident(job["incident"])
        assert incident is not None
        keys = (incident.PartitionKey, incident.RowKey)
        decide(runtime, *keys, "approve", by="on-call", via="cli", now=runtime.clock())
    else:
        run_retry(runtime, job["body"], job["dequeue_count"], job["message_id"])
    sys.exit(3)  # the point was never reached


if __name__ == "__main__":
    main(sys.argv[1])
