"""What a running function needs, built once per process from the settings."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from handlers import telemetry
from handlers.clients import AzureClients
from handlers.settings import Settings
from handlers.store import IncidentStore
from rules import RuleSet, default_rule_set

if TYPE_CHECKING:
    from handlers.notify import Notifier
    from handlers.tickets import TicketDesk


@dataclass(frozen=True)
class Runtime:
    """Settings plus the clients, store and rules built from them."""

    settings: Settings
    store: IncidentStore
    rules: RuleSet
    clients: AzureClients

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        client_options: dict[str, Any] | None = None,
    ) -> Runtime:
        telemetry.configure(settings)
        clients = AzureClients(settings, client_options)
        store = IncidentStore(clients.tables(), prefix=settings.table_name_prefix)
        store.ensure_tables()
        return cls(
            settings=settings,
            store=store,
            rules=default_rule_set(settings.user_rules_path),
            clients=clients,
        )

    @cached_property
    def tickets(self) -> TicketDesk:
        from handlers.sinks import configured_sinks
        from handlers.tickets import TicketDesk

        return TicketDesk(
            self.store, configured_sinks(self.settings), self.settings.ticket_language
        )

    @cached_property
    def notifier(self) -> Notifier:
        from handlers.notify import Notifier

        return Notifier(self.settings)

    @cached_property
    def retry_queue(self) -> Any:
        """The queue of delayed retries and follow-ups (created when missing)."""
        from azure.core.exceptions import ResourceExistsError

        queue = self.clients.queue(self.settings.retry_queue)
        with contextlib.suppress(ResourceExistsError):
            queue.create_queue()
        return queue


@cache
def current() -> Runtime:
    """The process-wide runtime, from the environment (the Functions host's app settings)."""
    return Runtime.from_settings(Settings.from_env())
