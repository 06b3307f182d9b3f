"""Shared fixtures: a real Azurite for the session, a fresh set of tables per test."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from handlers.runtime import Runtime
from handlers.settings import Settings
from handlers.store import IncidentStore
from sandbox.azurite import Azurite

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
def store(runtime: Runtime) -> IncidentStore:
    return runtime.store
