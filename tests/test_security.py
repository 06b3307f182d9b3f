"""Security: hostile names and text through the whole pipeline, scope and trust, and secrets
kept out of every log line."""

from __future__ import annotations

import base64
import copy
import dataclasses
import html
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.azure.errors import AzureCallError
from handlers.core.incident import IncidentStatus
from handlers.core.outcome import OutcomeKind
from handlers.core.text import clean
from handlers.intake.alerts import handle_alert
from handlers.intake.events import cloud_event
from handlers.intake.retry_queue import run_retry
from handlers.intake.watcher import watch
from handlers.pipeline.runtime import Runtime
from sandbox.azurite import free_port
from sandbox.receivers import (
    DEVOPS_PAT,
    EVENTGRID_KEY,
    SERVICENOW_PASSWORD,
    SERVICENOW_USER,
    Receivers,
)
from sandbox.simulator import AzureSimulator, failed_job_json
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import AGENT, STORAGE_TIMEOUT, SUB, VAULT_PREFIX, VM_GONE, deliver, drain, scene

# -- hostile names ---------------------------------------------------------------------------

HOSTILE_NAMES = [
    "vm/with/slashes",
    "back\\slash",
    "hash#tag",
    "what?now",
    "ctrl\x01\x1f\x7f\x85end",
    "名前付き仮想マシン",
    "emoji-🙂-vm",
    "lone\ud800surrogate",
    "<img src=x onerror=alert(1)>",
    "[code]<b>vm</b>[/code] *bold* <@U123> &amp;",
    "v" * 1_000,
]
MARKUP = "<script>alert(1)</script> [code]<b>x</b>[/code] *bold* & <!channel>"
#: What would be live markup (a script, an image, a mention) if it reached a sink unescaped.
LIVE_MARKUP = ("<script>", "<img", "<@U123>", "<!channel>")


def _failed_job_event(vm_name: str, vm_group: str, code: int, message: str) -> dict[str, Any]:
    """A BackupJobFailed CloudEvent for a job Azure would describe with these names."""
    start = datetime.now(UTC) - timedelta(hours=2)
    job = failed_job_json(f"{VAULT_PREFIX}/rsv-prod", vm_name, vm_group, (code, message), start)
    return cloud_event(job, str(uuid.uuid4()))


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_names_and_markup_reach_storage_and_every_sink_safely(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, name: str
) -> None:
    group = f"rg-{name[:40]}" if len(name) < 100 else "rg"  # the container name holds 1,024
    event = _failed_job_event(name, group, AGENT[0], f"{AGENT[1]} {MARKUP} {name}")
    outcome = deliver(live, event)
    assert (
        outcome.status == IncidentStatus.ESCALATED
    )  # a ticket: the rule for an unresponsive agent
    stored = clean(name)
    incident = live.storage.find_incident(outcome.job_id)
    assert incident is not None and incident.VmName == stored
    assert MARKUP in incident.ErrorMessage  # kept as it came, escaped only where rendered
    (ticket,) = live.tickets.tickets()
    assert ticket["VmName"] == stored and ticket["Status"] == "open"

    (work_item,) = [r for r in receivers.received("devops") if "/workitems/$" in r.path]
    fields = {op["path"]: op["value"] for op in work_item.body}
    description = fields["/fields/System.Description"]
    assert html.escape(stored[:200]) in description
    assert "<script>" not in description and "<img" not in description
    (incident_sn,) = [r for r in receivers.received("servicenow") if r.method == "POST"]
    assert "[code]" not in json.dumps(incident_sn.body).lower()
    assert incident_sn.body["correlation_id"] == outcome.job_id
    for body in (r.body for r in receivers.received("slack")):  # mrkdwn: no live markup
        mrkdwn = [body["text"]] + [
            b["text"]["text"] for b in body["blocks"] if b["text"]["type"] == "mrkdwn"
        ]
        assert [t for t in LIVE_MARKUP for text in mrkdwn if t in text] == []
    for body in (r.body for r in receivers.received("teams")):  # Markdown, escaped
        shown = [b["text"] for b in body["attachments"][0]["content"]["body"] if "text" in b]
        assert all("*bold*" not in text for text in shown)  # (cards render no HTML)
    hooks = [r.body for r in receivers.received("webhook") if "ticket" in r.body]
    assert [h["ticket"]["facts"]["Error message"] for h in hooks] == [incident.ErrorMessage]
    assert receivers.violations == []


# -- scope and trust ---------------------------------------------------------------------------


def test_names_longer_than_azure_could_send_are_rejected_not_cut(runtime: Runtime) -> None:
    """A name is an identity: cutting it would make an incident about another VM or job."""
    long_vm = _failed_job_event("v" * 2_000, "rg-1", AGENT[0], AGENT[1])
    long_container = copy.deepcopy(long_vm)
    long_container["data"]["properties"]["containerName"] = "iaasvmcontainerv2;rg-1;" + "v" * 2_000
    long_job = _failed_job_event("vm-1", "rg-1", AGENT[0], AGENT[1])
    long_job["data"]["id"] += "x" * 3_000
    events = (long_vm, long_container, long_job)
    reasons = [deliver(runtime, event).reason for event in events]
    assert reasons[0].startswith("properties.entityFriendlyName is longer than 1024 characters")
    assert reasons[1].startswith("properties.containerName is longer than 1024 characters")
    assert reasons[2].startswith("data.id is longer than 2048 characters")
    assert list(runtime.storage.incidents.query()) == []


def test_the_subscription_comes_from_the_job_not_from_the_envelope(live: Runtime) -> None:
    """An event whose envelope names an in-scope vault but whose job lives in another
    subscription is rejected: the job's own id decides the scope."""
    scoped = Runtime.from_settings(
        dataclasses.replace(live.settings, subscription_ids=frozenset({SUB})), FAST_CLIENTS
    )
    foreign = "0badc0de-0000-4000-8000-000000000000"
    event = _failed_job_event("vm-1", "rg-1", VM_GONE[0], VM_GONE[1])
    event["data"]["id"] = event["data"]["id"].replace(SUB, foreign)
    outcome = deliver(scoped, event)
    assert (
        outcome.kind == OutcomeKind.REJECTED
        and f"subscription {foreign} is outside" in outcome.reason
    )
    assert list(scoped.storage.incidents.query()) == []


def _vm_gone_claims(live: Runtime) -> list[tuple[object, str]]:
    """Every way a payload can say "the VM is gone": each code of the VM stop-protection
    rules, and the text alone."""
    rules = [r for r in live.rules.rules if r.action == "stop_protection" and "vm" in r.workloads]
    codes = sorted({code for rule in rules for code in rule.codes})
    return [(code, "") for code in codes] + [(None, "The virtual machine doesn't exist")]


def test_no_claim_that_the_vm_is_gone_stops_a_vm_that_exists(
    live: Runtime, sim: AzureSimulator
) -> None:
    claims = _vm_gone_claims(live)
    assert len(claims) >= 6
    for i, (code, message) in enumerate(claims):
        s = scene(sim, AGENT, vm_name=f"vm-alive-{i}")
        event = s.event(code=code, message=message)
        event["data"]["properties"]["extendedInfo"]["dynamicErrorMessage"] = message
        outcome = deliver(live, event)
        assert outcome.action == "stop_protection", (code, message)
        assert outcome.status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == []
    assert all(
        any("still has the VM" in a.detail for a in incident.actions)
        for incident in live.storage.incidents.query()
    )


@pytest.mark.parametrize("kind", ["429", "500", "drop", "403"])
def test_a_failing_vm_check_is_never_taken_for_a_deleted_vm(
    live: Runtime, sim: AzureSimulator, kind: str
) -> None:
    """Only ARM's 404 means "gone": throttling, errors, dropped connections and denials on the
    VM read never lead to stopping protection."""
    redelivering = Runtime.from_settings(
        dataclasses.replace(live.settings, claim_lease_seconds=0),
        {**FAST_CLIENTS, "retry_total": 1},
    )
    s = scene(sim, AGENT)
    event = s.event(code=VM_GONE[0], message=VM_GONE[1])
    sim.faults.add("vm_get", kind, times=2, retry_after=0)
    if kind == "403":
        assert (
            deliver(redelivering, event).status == IncidentStatus.ESCALATED
        )  # denied: a person decides
    else:
        with pytest.raises(AzureCallError):
            deliver(redelivering, event)  # unavailable: the platform redelivers
        assert deliver(redelivering, event).status == IncidentStatus.ESCALATED
    assert sim.calls_to(route="item_put") == []
    item = sim.get_protected_item(s.vault["id"], s.vm_name, s.vm_group)
    assert item["properties"]["protectionState"] == "Protected"


# -- secrets never reach a log line ----------------------------------------------------------

TEAMS_PATH = "workflows/teams-5ecret-path-4a7f"
SLACK_PATH = "services/T000/B000/slack5ecretPath9c2e"
TICKET_PATH = "hooks/ticket-5ecret-path-77d1"
NOTIFY_PATH = "hooks/notify-5ecret-path-3b0e"
UNREACHABLE_PATH = "hooks/unreachable-5ecret-path-e61a"
STATIC_TOKEN = "static-5ecret-token-0f9d2c"
INSIGHTS = "InstrumentationKey=5ecret00-1111-4222-8333-444455556666;IngestionEndpoint=https://x"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _record_text(record: logging.LogRecord) -> str:
    """Everything a handler could print from a record."""
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts += [repr(v) for k, v in vars(record).items() if k not in ("msg", "args", "exc_info")]
    return "\n".join(parts)


@pytest.mark.slow
def test_no_secret_appears_in_any_log_line(
    live: Runtime,
    sim: AzureSimulator,
    receivers: Receivers,
    caplog: pytest.LogCaptureFixture,
    azure_monitor_calls: list[dict[str, Any]],
) -> None:
    settings = dataclasses.replace(
        live.settings,
        static_token=STATIC_TOKEN,
        ticket_webhook_url=f"{receivers.url('webhook')}/{TICKET_PATH}",
        teams_webhook_url=f"{receivers.url('teams')}/{TEAMS_PATH}",
        slack_webhook_url=f"{receivers.url('slack')}/{SLACK_PATH}",
        notify_webhook_url=f"{receivers.url('webhook')}/{NOTIFY_PATH}",
        subscription_ids=frozenset({SUB}),
        eventgrid_endpoint=receivers.url("eventgrid") + "/api/events",
        eventgrid_key=EVENTGRID_KEY,
        appinsights_connection=INSIGHTS,
    )
    account_key = dict(
        part.split("=", 1) for part in settings.storage_connection.split(";") if "=" in part
    )["AccountKey"]
    secrets = [
        *settings.secrets(),
        TEAMS_PATH,
        SLACK_PATH,
        TICKET_PATH,
        NOTIFY_PATH,
        UNREACHABLE_PATH,
        account_key,
        SERVICENOW_PASSWORD,
        _basic(SERVICENOW_USER, SERVICENOW_PASSWORD),
        DEVOPS_PAT,
        _basic("", DEVOPS_PAT),
        STATIC_TOKEN,
        EVENTGRID_KEY,
        "5ecret00-1111-4222-8333-444455556666",
    ]
    assert len(settings.secrets()) == 10  # every secret setting has a value
    caplog.set_level(logging.DEBUG)
    runtime = Runtime.from_settings(settings, FAST_CLIENTS)
    assert azure_monitor_calls and azure_monitor_calls[0]["connection_string"] == INSIGHTS

    # The main paths: a ticket to every sink and channel, a retry through to its follow-up,
    # stop protection, the watcher publishing with the topic key, an alert.
    sim.auto_complete_backups = "Completed"
    deliver(runtime, scene(sim, AGENT, vm_name="vm-ticket").event())
    deliver(runtime, scene(sim, STORAGE_TIMEOUT, vm_name="vm-retry").event())
    drain(runtime)
    gone = scene(sim, VM_GONE, vm_name="vm-gone")
    sim.delete_vm(gone.vm_id)
    deliver(runtime, gone.event())
    watch(runtime)
    alert = load_event("alert-backup-failure-fired")
    alert["data"]["essentials"]["alertTargetIDs"] = [gone.vault["id"].lower()]
    alert["data"]["alertContext"]["extendedInfo"]["jobId"] = gone.job_id
    assert handle_alert(runtime, alert).status == 200
    # And what goes wrong: sinks refusing or throttling, a channel that cannot be reached,
    # Azure failing, a retry message that keeps failing.
    receivers.fail("servicenow", 500)
    receivers.fail("slack", 503, 503, 503, 503)
    unreachable = Runtime.from_settings(
        dataclasses.replace(
            settings, notify_webhook_url=f"http://127.0.0.1:{free_port()}/{UNREACHABLE_PATH}"
        ),
        FAST_CLIENTS,
    )
    deliver(unreachable, scene(sim, AGENT, vm_name="vm-refused").event())
    failing = scene(sim, STORAGE_TIMEOUT, vm_name="vm-failing")
    deliver(runtime, failing.event())
    sim.faults.add("job_get", "500", times=100)
    (message,) = runtime.retry_queue.receive(visibility_seconds=60)
    with pytest.raises(AzureCallError):
        run_retry(runtime, message.content.decode(), 1, message.id)
    sim.faults.clear()
    assert incident_status(runtime, gone.job_id) == IncidentStatus.RESOLVED

    assert len(caplog.records) > 50  # the SDKs and the app did log, at every level
    loggers = {r.name.split(".")[0] for r in caplog.records}
    assert {"azure", "urllib3", "backup_responder"} <= loggers
    leaks = [
        (record.name, secret[:12])
        for record in caplog.records
        for secret in secrets
        if secret in _record_text(record)
    ]
    assert sorted(set(leaks)) == [], sorted(set(leaks))
    assert any("***" in r.getMessage() for r in caplog.records)  # redaction did happen


def incident_status(runtime: Runtime, job_id: str) -> str:
    incident = runtime.storage.find_incident(job_id)
    assert incident is not None
    return incident.Status
