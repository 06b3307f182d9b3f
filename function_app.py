"""Azure Functions entry points: triggers only.

Each trigger hands its typed input, with the process's runtime, to ``handlers.intake`` (or
``handlers.audit``); the handlers and the Azure SDKs they use are imported inside the
functions so that a cold start pays only for what it runs.
"""

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name(name="on_backup_failure")
@app.event_grid_trigger(arg_name="event")
def on_backup_failure(event: func.EventGridEvent) -> None:
    """A ``BackupResponder.BackupJobFailed`` event (Event Grid schema or CloudEvents 1.0)."""
    from handlers.intake.eventgrid import handle_failure_event
    from handlers.pipeline.runtime import current

    handle_failure_event(current(), event)


@app.function_name(name="on_vm_deleted")
@app.event_grid_trigger(arg_name="event")
def on_vm_deleted(event: func.EventGridEvent) -> None:
    """``Microsoft.Resources.ResourceDeleteSuccess`` for a VM, from the subscription topic."""
    from handlers.intake.vm_deleted import handle_vm_deleted
    from handlers.pipeline.runtime import current

    handle_vm_deleted(current(), event)


@app.function_name(name="on_backup_alert")
@app.route(route="alerts/backup", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def on_backup_alert(req: func.HttpRequest) -> func.HttpResponse:
    """An Azure Monitor "Backup Failure" alert (common alert schema) from the action group."""
    import json

    from handlers.intake.alerts import handle_alert
    from handlers.pipeline.runtime import current

    try:
        payload = req.get_json()
    except ValueError:
        payload = req.get_body().decode("utf-8", "replace")
    answer = handle_alert(current(), payload)
    return func.HttpResponse(
        json.dumps(answer.body), status_code=answer.status, mimetype="application/json"
    )


@app.function_name(name="watch_backup_jobs")
@app.timer_trigger(arg_name="timer", schedule="%WATCH_SCHEDULE%", run_on_startup=False)
def watch_backup_jobs(timer: func.TimerRequest) -> None:
    """Publish every newly failed Azure VM backup job of every vault to our topic."""
    from handlers.intake.watcher import watch
    from handlers.pipeline.runtime import current

    watch(current())


@app.function_name(name="run_retry")
@app.queue_trigger(arg_name="msg", queue_name="%RETRY_QUEUE%", connection="AzureWebJobsStorage")
def run_retry(msg: func.QueueMessage) -> None:
    """A delayed retry or a follow-up check, queued by the ``retry`` action."""
    from handlers.intake.retry_queue import run_retry as handle
    from handlers.pipeline.runtime import current

    body = msg.get_body().decode("utf-8", "replace")
    handle(current(), body, msg.dequeue_count or 1, msg.id or "")


@app.function_name(name="expire_claims")
@app.timer_trigger(arg_name="timer", schedule="0 17 * * * *", run_on_startup=False)
def expire_claims(timer: func.TimerRequest) -> None:
    """Forget handled jobs older than ``CLAIM_RETENTION_DAYS``, a bounded batch per hour."""
    from handlers.intake.housekeeping import expire_claims as expire
    from handlers.pipeline.runtime import current

    expire(current())


@app.function_name(name="approvals")
@app.route(route="approvals", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def approvals(req: func.HttpRequest) -> func.HttpResponse:
    """An Approve / Reject link: GET shows what it would do, POST does it. No function key: the
    link's signed, expiring, single-use token is the authority (see handlers/intake/approvals)."""
    from handlers.intake.approvals import answer, show
    from handlers.pipeline.runtime import current

    if req.method == "POST":
        page = answer(current(), req.form.get("token", ""), req.form.get("by", ""))
    else:
        page = show(current(), req.params.get("token", ""))
    return func.HttpResponse(
        page.html, status_code=page.status, headers=page.headers, mimetype="text/html"
    )


@app.function_name(name="expire_approvals")
@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def expire_approvals(timer: func.TimerRequest) -> None:
    """Unanswered approvals past APPROVAL_TIMEOUT_HOURS become escalated tickets; decisions a
    crash left half done are finished."""
    from handlers.intake.approvals import expire_approvals as expire
    from handlers.pipeline.runtime import current

    expire(current())


@app.function_name(name="sweep_orphans")
@app.timer_trigger(arg_name="timer", schedule="%SWEEP_SCHEDULE%", run_on_startup=False)
def sweep_orphans(timer: func.TimerRequest) -> None:
    """Find protected VM items whose VM is gone (``SWEEP_MODE``: off, list or stop)."""
    from handlers.pipeline.runtime import current
    from handlers.sweep.orphans import on_timer

    on_timer(current())


@app.function_name(name="send_digest")
@app.timer_trigger(arg_name="timer", schedule="%DIGEST_SCHEDULE%", run_on_startup=False)
def send_digest(timer: func.TimerRequest) -> None:
    """The morning digest to every chat channel, once per UTC day (``DIGEST_ENABLED``)."""
    from handlers.digest.daily import on_timer
    from handlers.pipeline.runtime import current

    on_timer(current())


@app.function_name(name="health_api")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def health_api(req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/health``: the responder's own health (200 only when every check is ok)."""
    import json

    from handlers.audit.api import health_answer
    from handlers.pipeline.runtime import current

    runtime = current()
    queues = (runtime.retry_queue, runtime.poison_queue)
    status, body = health_answer(runtime.storage, runtime.settings, runtime.dead_letters, queues)
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


@app.function_name(name="incidents_api")
@app.route(route="incidents", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def incidents_api(req: func.HttpRequest) -> func.HttpResponse:
    """``GET /api/incidents``: incidents by the audit filters, as JSON pages."""
    import json

    from handlers.audit.api import list_incidents
    from handlers.pipeline.runtime import current

    status, body = list_incidents(current().storage, dict(req.params), req.url)
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False), status_code=status, mimetype="application/json"
    )
