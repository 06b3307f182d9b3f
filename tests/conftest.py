"""Shared fixtures: a real Azurite for the session, a fresh set of tables per test."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.core.settings import Settings
from handlers.pipeline.runtime import Runtime
from handlers.storage import Storage
from sandbox.azurite import Azurite
from sandbox.receivers import (
    DEVOPS_PAT,
    DEVOPS_PROJECT,
    SERVICENOW_PASSWORD,
    SERVICENOW_USER,
    Receivers,
)
from sandbox.simulator import HEADER_CASE_ENV, SHAPES_ENV, AzureSimulator
from tests.world import World, shared_world

EVENTS = Path(__file__).parent / "events"
_prefixes = itertools.count(1)


def load_event(name: str) -> Any:
    """A payload fixture from ``tests/events`` (``.json`` may be omitted)."""
    path = EVENTS / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running


@pytest.fixture
def settings(azurite: Azurite) -> Settings:
    """Settings pointing at Azurite, with tables no other test uses."""
    return Settings(
        storage_connection=azurite.connection_string, table_name_prefix=f"t{next(_prefixes)}"
    )


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime.from_settings(settings)


@pytest.fixture
def storage(runtime: Runtime) -> Storage:
    return runtime.storage


@pytest.fixture(scope="session")
def world(azurite: Azurite) -> World:
    """The seeded incidents table shared by the audit and report tests (read only)."""
    return shared_world(azurite.connection_string)


@pytest.fixture(scope="session")
def simulator() -> Iterator[AzureSimulator]:
    with AzureSimulator() as running:
        yield running


@pytest.fixture(scope="session")
def receivers() -> Iterator[Receivers]:
    with Receivers() as running:
        yield running


@pytest.fixture
def sim(simulator: AzureSimulator, receivers: Receivers) -> Iterator[AzureSimulator]:
    """A clean simulator (and receivers); fails the test if backup data was ever deleted."""
    simulator.reset()
    receivers.clear()
    yield simulator
    assert simulator.violations == [], "backup data must never be deleted"
    assert not simulator.calls_to(route="item_delete")


@pytest.fixture
def azsim(sim: AzureSimulator, monkeypatch: pytest.MonkeyPatch) -> AzureSimulator:
    """The shared simulator, clean, in Azure's shapes whatever the environment asks for."""
    monkeypatch.delenv(SHAPES_ENV, raising=False)
    monkeypatch.delenv(HEADER_CASE_ENV, raising=False)
    sim.reset()
    sim.shapes = "azure"
    return sim


def live_settings(
    settings: Settings, sim: AzureSimulator, hooks: Receivers, **overrides: Any
) -> Settings:
    """Settings that act for real, against the simulator and the local receivers."""
    values = {
        "dry_run": False,
        "management_url": sim.base_url,
        "ca_bundle": sim.ca_pem_path,
        "static_token": "sim-token",
        "retry_queue": f"{settings.table_name_prefix}retries",
        "queue_delay_scale": 0.0,
        "ticket_webhook_url": hooks.url("webhook"),
        "servicenow_url": hooks.url("servicenow"),
        "servicenow_username": SERVICENOW_USER,
        "servicenow_password": SERVICENOW_PASSWORD,
        "devops_org_url": hooks.url("devops"),
        "devops_project": DEVOPS_PROJECT,
        "devops_pat": DEVOPS_PAT,
        "teams_webhook_url": hooks.url("teams"),
        "slack_webhook_url": hooks.url("slack"),
        "notify_webhook_url": hooks.url("webhook") + "/notify",
        # The simulator is not ARM: no test waits for read pacing in real time (the pacing
        # tests run it on a simulated clock).
        "arm_reads_per_second": 1000.0,
        "arm_read_burst": 1000,
        **overrides,
    }
    return dataclasses.replace(settings, **values)


#: Management client options for tests: the simulator answers at once, so do not wait.
FAST_CLIENTS = {"polling_interval": 0, "retry_backoff_factor": 0.05, "retry_backoff_max": 0.2}


@pytest.fixture
def live(settings: Settings, sim: AzureSimulator, receivers: Receivers) -> Runtime:
    return Runtime.from_settings(live_settings(settings, sim, receivers), FAST_CLIENTS)


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    return str(value)


@pytest.fixture
def as_app_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Make a runtime's settings the app settings that ``function_app`` reads (environment)."""
    from handlers.core.settings import SPECS
    from handlers.pipeline import runtime as runtime_module

    def export(settings: Settings) -> Runtime:
        for spec in SPECS:
            monkeypatch.setenv(spec.env, _env_value(getattr(settings, spec.field)))
        runtime_module.current.cache_clear()
        return runtime_module.current()

    yield export
    runtime_module.current.cache_clear()


@functools.cache
def indexed_functions() -> dict[str, Any]:
    """The app's functions as the worker indexes them (``get_functions()`` works only once)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def azure_monitor_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """A process that has configured no telemetry yet, with Azure Monitor's setup recorded
    instead of run: nothing is exported anywhere."""
    import azure.monitor.opentelemetry as distro

    from handlers.outbound import telemetry

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(telemetry, "_state", telemetry._State())
    monkeypatch.setattr(distro, "configure_azure_monitor", lambda **kw: calls.append(kw))
    yield calls
