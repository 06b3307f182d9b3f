"""The function entry points, called the way the worker calls them, with real trigger objects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import azure.functions as func
import pytest

import function_app
from handlers.core.settings import Settings
from handlers.pipeline import runtime as runtime_module
from handlers.pipeline.runtime import Runtime
from tests.conftest import indexed_functions, load_event
from tests.world import as_trigger_input


@pytest.fixture
def app_runtime(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The runtime the functions build from app settings, pointed at this test's tables."""
    monkeypatch.setenv("AzureWebJobsStorage", settings.storage_connection)
    monkeypatch.setenv("TABLE_NAME_PREFIX", settings.table_name_prefix)
    monkeypatch.setenv("DRY_RUN", "true")
    runtime_module.current.cache_clear()
    yield runtime_module.current()
    runtime_module.current.cache_clear()


def _decode(payload: dict) -> func.EventGridEvent | func.CloudEvent:
    """What the worker does with a trigger payload."""
    return as_trigger_input(payload)


@pytest.mark.parametrize(
    ("name", "trigger"),
    [
        ("on_backup_failure", {"type": "eventGridTrigger", "name": "event"}),
        ("on_vm_deleted", {"type": "eventGridTrigger", "name": "event"}),
        (
            "on_backup_alert",
            {"type": "httpTrigger", "route": "alerts/backup", "authLevel": "FUNCTION"},
        ),
        ("watch_backup_jobs", {"type": "timerTrigger", "schedule": "%WATCH_SCHEDULE%"}),
        (
            "run_retry",
            {
                "type": "queueTrigger",
                "queueName": "%RETRY_QUEUE%",
                "connection": "AzureWebJobsStorage",
            },
        ),
        ("incidents_api", {"type": "httpTrigger", "route": "incidents", "methods": ["GET"]}),
        ("expire_claims", {"type": "timerTrigger", "schedule": "0 17 * * * *"}),
        ("health_api", {"type": "httpTrigger", "route": "health", "methods": ["GET"]}),
        (
            "approvals",
            {"type": "httpTrigger", "route": "approvals", "authLevel": "ANONYMOUS"},
        ),
        ("expire_approvals", {"type": "timerTrigger", "schedule": "0 */5 * * * *"}),
        ("sweep_orphans", {"type": "timerTrigger", "schedule": "%SWEEP_SCHEDULE%"}),
        ("send_digest", {"type": "timerTrigger", "schedule": "%DIGEST_SCHEDULE%"}),
    ],
)
def test_every_trigger_is_declared_as_the_infra_expects(name: str, trigger: dict) -> None:
    bindings = json.loads(indexed_functions()[name].get_function_json())["bindings"]
    assert trigger.items() <= bindings[0].items()


def test_the_app_has_exactly_these_functions() -> None:
    assert sorted(indexed_functions()) == sorted(
        [
            "on_backup_failure",
            "on_vm_deleted",
            "on_backup_alert",
            "watch_backup_jobs",
            "run_retry",
            "incidents_api",
            "expire_claims",
            "health_api",
            "approvals",
            "expire_approvals",
            "sweep_orphans",
            "send_digest",
        ]
    )


def test_event_grid_event_becomes_an_incident(app_runtime: Runtime) -> None:
    event = _decode(load_event("eventgrid-storage-timeout"))
    assert isinstance(event, func.EventGridEvent)
    function_app.on_backup_failure(event)
    incident = app_runtime.storage.find_incident("c1a2b3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b")
    assert incident is not None and incident.Source == "eventgrid"


def test_cloud_event_becomes_an_incident(app_runtime: Runtime) -> None:
    event = _decode(load_event("cloudevent-vm-not-found"))
    assert isinstance(event, func.CloudEvent)
    function_app.on_backup_failure(event)
    incident = app_runtime.storage.find_incident("a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c6d")
    assert incident is not None and incident.PlannedAction == "stop_protection"


def test_constructed_event_objects_are_accepted(app_runtime: Runtime) -> None:
    data = load_event("cloudevent-vm-not-found")["data"]
    grid = func.EventGridEvent(
        id="e1", topic="/t", subject="s", event_type="BackupResponder.BackupJobFailed",
        event_time=datetime.now(), data=data, data_version="1.0",
    )  # fmt: skip
    cloud = func.CloudEvent(
        id="c1", source="/v", type="BackupResponder.BackupJobFailed", specversion="1.0", data=data
    )
    function_app.on_backup_failure(grid)
    function_app.on_backup_failure(cloud)
    (incident,) = app_runtime.storage.incidents.query()
    assert incident.Occurrences == 2


def test_malformed_event_is_recorded_not_raised(app_runtime: Runtime) -> None:
    function_app.on_backup_failure(_decode(load_event("malformed-foreign-type")))
    (row,) = app_runtime.storage.rejections.all()
    assert "is not BackupResponder.BackupJobFailed" in row["Reason"]


def test_event_whose_data_is_not_an_object_is_rejected(app_runtime: Runtime) -> None:
    event = func.EventGridEvent(
        id="e2", topic="/t", subject="s", event_type="BackupResponder.BackupJobFailed",
        event_time=None, data="{not json", data_version="1.0",
    )  # fmt: skip
    function_app.on_backup_failure(event)
    (row,) = app_runtime.storage.rejections.all()
    assert row["Reason"] == "data is a str, not an object"
    assert row["EventId"] == "e2"
