"""What a running function needs, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from handlers.clients import AzureClients
from handlers.settings import Settings
from handlers.store import IncidentStore
from rules import RuleSet, default_rule_set


@dataclass(frozen=True)
class Runtime:
    """Settings plus the clients, store and rules built from them."""

    settings: Settings
    store: IncidentStore
    rules: RuleSet
    clients: AzureClients

    @classmethod
    def from_settings(
        cls, settings: Settings, client_options: dict[str, Any] | None = None
    ) -> Runtime:
        clients = AzureClients(settings, client_options)
        store = IncidentStore(clients.tables(), prefix=settings.table_name_prefix)
        store.ensure_tables()
        return cls(
            settings=settings,
            store=store,
            rules=default_rule_set(settings.user_rules_path),
            clients=clients,
        )


@cache
def current() -> Runtime:
    """The process-wide runtime, from the environment (the Functions host's app settings)."""
    return Runtime.from_settings(Settings.from_env())
