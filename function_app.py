"""Azure Functions entry points: triggers only.

Each trigger hands its typed input to ``handlers``; the handlers (and the Azure SDKs they
use) are imported inside the functions so that a cold start pays only for what it runs.
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name(name="on_backup_failure")
@app.event_grid_trigger(arg_name="event")
def on_backup_failure(event: func.EventGridEvent) -> None:
    """A ``BackupResponder.BackupJobFailed`` event (Event Grid schema or CloudEvents 1.0)."""
    from handlers.intake import handle_failure_event

    handle_failure_event(event)


@app.function_name(name="run_retry")
@app.queue_trigger(arg_name="msg", queue_name="%RETRY_QUEUE%", connection="AzureWebJobsStorage")
def run_retry(msg: func.QueueMessage) -> None:
    """A delayed retry or a follow-up check, queued by the ``retry`` action."""
    from handlers.actions.retry import run_retry as handle
    from handlers.runtime import current

    handle(current(), msg.get_body().decode("utf-8"), msg.dequeue_count or 1)
