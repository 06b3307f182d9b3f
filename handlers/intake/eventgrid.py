"""Event Grid deliveries (Event Grid schema or CloudEvents 1.0) to ``respond()``.

``function_app.py`` hands each trigger's typed object here; nothing in this module imports
``azure.functions``, so it is as cheap to import as the parser itself.
"""

from __future__ import annotations

from typing import Any

from handlers.core.outcome import Outcome
from handlers.intake.events import parse
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime


def function_event_to_dict(event: Any) -> dict[str, Any]:
    """The wire form of a ``func.EventGridEvent`` or ``func.CloudEvent``."""
    if hasattr(event, "specversion"):
        return {
            **getattr(event, "extension_attrs", {}),
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": event.time,
            "data": event.get_json(),
        }
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time,
        "dataVersion": event.data_version,
        "data": event.get_json(),
    }


def handle_failure_event(runtime: Runtime, event: Any) -> Outcome:
    """Entry of ``on_backup_failure``: one Event Grid or CloudEvents delivery."""
    return respond(runtime, parse(function_event_to_dict(event)))
