"""Telemetry: log lines carry the incident's ids, secrets never reach a log, counters count,
and nothing is exported (or even imported) without an Application Insights connection string."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from handlers.core.settings import Settings
from handlers.intake.events import parse
from handlers.outbound import telemetry
from handlers.pipeline.respond import respond
from handlers.pipeline.runtime import Runtime
from sandbox.receivers import Receivers
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS, load_event
from tests.world import AGENT, deliver, scene

ROOT = Path(__file__).resolve().parent.parent
CONNECTION = "InstrumentationKey=00000000-0000-0000-0000-000000000000"


def _about_incidents(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [
        r
        for r in records
        if r.name.startswith(telemetry.LOGGER) and getattr(r, "outcome", "") != "rejected"
    ]


def test_every_line_about_an_incident_carries_its_ids(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=telemetry.LOGGER)
    event = load_event("cloudevent-vm-not-found")
    outcome = respond(runtime, parse(event))
    records = _about_incidents(caplog.records)
    assert len(records) == 2  # the planned step and the one outcome line
    for record in records:
        line = json.loads(telemetry.JsonFormatter().format(record))
        assert line["incident_id"] == line["job_id"] == outcome.job_id
        assert line["rule"] == outcome.rule and line["action"] == outcome.action
        assert line["logger"] == telemetry.LOGGER and line["message"]
    (summary,) = [r for r in records if hasattr(r, "outcome")]
    assert summary.getMessage() == outcome.describe() and summary.outcome == "new"


def test_action_steps_carry_the_ids_too(
    live: Runtime, sim: AzureSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=telemetry.LOGGER)
    s = scene(sim, AGENT)
    deliver(live, s.event())
    steps = [r for r in caplog.records if hasattr(r, "state")]
    assert {(r.action, r.state) for r in steps} >= {("ticket", "planned"), ("ticket", "opened")}
    for record in _about_incidents(caplog.records):
        assert all(getattr(record, name) for name in telemetry.INCIDENT_FIELDS), record
        assert record.incident_id == record.job_id == s.job_id


def test_secrets_never_reach_the_logs(
    live: Runtime, sim: AzureSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = live.settings.secrets()
    assert len(secrets) >= 6  # passwords, tokens and webhook URLs of the live settings
    deliver(live, scene(sim, AGENT).event())  # a ticket through every sink, with credentials
    for name in ("azure.core.pipeline", "urllib3.connectionpool", telemetry.LOGGER):
        logging.getLogger(name).info("calling %s with %s", *secrets[:2])
    try:
        raise RuntimeError(f"authentication failed: {secrets[-1]}")
    except RuntimeError:
        logging.getLogger("handlers.outbound.sinks").exception("sink failed")
    logged = caplog.text + "".join(telemetry.JsonFormatter().format(r) for r in caplog.records)
    assert "***" in logged
    assert [s for s in secrets if s in logged] == []


def test_redaction_lets_a_malformed_log_call_reach_the_handlers_unchanged() -> None:
    redactor = telemetry.SecretRedactor()
    redactor.add(["hunter2-secret"])
    careless = logging.makeLogRecord({"msg": "%s and %s", "args": ("one argument short",)})
    assert redactor.filter(careless) and careless.args == ("one argument short",)
    fine = logging.makeLogRecord({"msg": "token %s", "args": ("hunter2-secret",)})
    assert redactor.filter(fine) and fine.getMessage() == "token ***"


def test_without_a_connection_string_nothing_heavy_is_imported_or_exported() -> None:
    probe = """
import json, sys
import function_app
at_import = sorted(m for m in ("opentelemetry", "azure.monitor.opentelemetry", "rich",
                               "handlers.audit", "handlers.outbound.telemetry") if m in sys.modules)
from handlers.outbound import telemetry
from handlers.core.settings import Settings
telemetry.configure(Settings.from_env({}))
telemetry.counters().incidents.add(1, {"category": "transient"})
from opentelemetry import metrics
print(json.dumps({"at_import": at_import,
                  "monitor": "azure.monitor.opentelemetry" in sys.modules,
                  "sdk": "opentelemetry.sdk" in sys.modules,
                  "provider": type(metrics.get_meter_provider()).__name__}))
"""
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout)
    assert seen == {
        "at_import": [],
        "monitor": False,
        "sdk": False,
        "provider": "_ProxyMeterProvider",
    }


def test_the_connection_string_turns_azure_monitor_on_once(
    azure_monitor_calls: list[dict[str, Any]],
) -> None:
    telemetry.configure(Settings())
    assert azure_monitor_calls == []
    telemetry.configure(Settings(appinsights_connection=CONNECTION))
    telemetry.configure(Settings(appinsights_connection=CONNECTION))
    assert len(azure_monitor_calls) == 1
    assert azure_monitor_calls[0]["connection_string"] == CONNECTION
    assert azure_monitor_calls[0]["logger_name"] == telemetry.LOGGER


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> InMemoryMetricReader:
    """The app's counters, on a meter whose readings the test can take."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    state = telemetry._State(counters=telemetry.Counters.from_meter(meter))
    monkeypatch.setattr(telemetry, "_state", state)
    return reader


def _readings(reader: InMemoryMetricReader) -> Counter[tuple[str, frozenset[Any]]]:
    data = reader.get_metrics_data()
    assert data is not None
    readings: Counter[tuple[str, frozenset[Any]]] = Counter()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    readings[metric.name, frozenset(point.attributes.items())] += point.value
    return readings


def test_counters_count_incidents_actions_and_rejections(
    runtime: Runtime, reader: InMemoryMetricReader
) -> None:
    for name in ("cloudevent-vm-not-found", "eventgrid-storage-timeout", "cloudevent-vm-not-found"):
        respond(runtime, parse(load_event(name)))
    respond(runtime, parse("not an event"))
    readings = _readings(reader)
    incidents = {
        dict(attrs)["category"]: n for (name, attrs), n in readings.items() if name == "incidents"
    }
    assert incidents == {"vm_missing": 1, "transient": 1}  # the repeat is not a new incident
    planned = {
        dict(attrs)["action"]: n
        for (name, attrs), n in readings.items()
        if name == "actions" and dict(attrs)["outcome"] == "planned"
    }
    assert planned == {"stop_protection": 1, "retry": 1}
    assert sum(n for (name, _), n in readings.items() if name == "rejected_events") == 1


def test_action_steps_are_counted_by_outcome(
    live: Runtime, sim: AzureSimulator, reader: InMemoryMetricReader
) -> None:
    deliver(live, scene(sim, AGENT).event())
    readings = _readings(reader)
    assert readings["actions", frozenset({"action": "ticket", "outcome": "opened"}.items())] == 1


def test_secrets_are_redacted_in_every_spelling_a_client_logs(
    live: Runtime, sim: AzureSimulator, receivers: Receivers, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook URL with percent-encoded unreserved characters: ``requests`` re-quotes it
    (``%7E`` → ``~``) and urllib3's retry warnings print the path it sent."""
    secret_path = "workflows/flow%7Ebeta%2D77/triggers/manual?sig=5ecretSig%2DAbc9&sv=1.0"
    settings = dataclasses.replace(
        live.settings, teams_webhook_url=f"{receivers.url('teams')}/{secret_path}"
    )
    runtime = Runtime.from_settings(settings, FAST_CLIENTS)
    receivers.fail("teams", 503, 503, 503, 503)  # urllib3 retries, and warns each time
    caplog.set_level(logging.DEBUG)
    deliver(runtime, scene(sim, AGENT).event())
    logged = "\n".join(
        [caplog.text, *(telemetry.JsonFormatter().format(r) for r in caplog.records)]
    )
    assert "Retrying" in logged or "503" in logged  # the client did log the refused requests
    for spelling in ("flow~beta-77", "flow%7Ebeta%2D77", "flow%7ebeta%2d77", "5ecretSig"):
        assert spelling.lower() not in logged.lower(), spelling


def test_redaction_matches_escapes_in_any_case() -> None:
    redactor = telemetry.SecretRedactor()
    redactor.add(["https://hooks.example/T0/a%7Eb%2Dc?sig=Xy%2DZ9"])
    for logged in ("POST /T0/a~b-c?sig=Xy-Z9 HTTP/1.1", "url /T0/a%7eb%2dc?sig=Xy%2dZ9"):
        assert "a~b" not in redactor.scrub(logged) and "%7e" not in redactor.scrub(logged).lower()
