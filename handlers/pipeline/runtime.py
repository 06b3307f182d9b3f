"""What a running function needs, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from handlers.azure.clients import AzureClients
from handlers.azure.pacing import PaceClock
from handlers.core.settings import Settings
from handlers.outbound import telemetry
from handlers.storage import (
    DeadLetterStore,
    RetryQueue,
    Storage,
    dead_letters,
    poison_queue,
    retry_queue,
)
from rules import RuleSet, default_rule_set

if TYPE_CHECKING:
    from handlers.actions.desk import TicketDesk
    from handlers.outbound.notify import Notifier


@dataclass(frozen=True)
class Runtime:
    """Settings plus the clients, storage and rules built from them (the actions' services)."""

    settings: Settings
    storage: Storage
    rules: RuleSet
    clients: AzureClients
    #: The time as the pipeline sees it (tests move it; the app never does).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        client_options: dict[str, Any] | None = None,
        pace_clock: PaceClock | None = None,
    ) -> Runtime:
        """The runtime of a function: tables are created when missing. ``pace_clock`` is the
        clock of the Azure layer's read pacing and retry waits (simulated in tests)."""
        telemetry.configure(settings)
        clients = AzureClients(settings, client_options, pace_clock)
        storage = Storage.from_settings(settings, lambda: clients.credential, heal=True)
        storage.ensure_tables()
        return cls(settings, storage, default_rule_set(settings.user_rules_path), clients)

    @cached_property
    def tickets(self) -> TicketDesk:
        from handlers.actions.desk import TicketDesk
        from handlers.outbound.sinks import configured_sinks

        return TicketDesk(
            self.storage.tickets,
            configured_sinks(self.settings),
            self.settings.ticket_language,
            timedelta(days=self.settings.ticket_reopen_days),
        )

    @cached_property
    def notifier(self) -> Notifier:
        from handlers.outbound.notify import Notifier

        return Notifier(self.settings)

    @cached_property
    def retry_queue(self) -> RetryQueue:
        """The queue of delayed retries and follow-ups (created when missing)."""
        return retry_queue(self.settings, lambda: self.clients.credential)

    @cached_property
    def poison_queue(self) -> RetryQueue:
        """Where the Functions host parks the retry messages it gave up on."""
        return poison_queue(self.settings, lambda: self.clients.credential)

    @cached_property
    def dead_letters(self) -> DeadLetterStore:
        """Event Grid's dead-letter container."""
        return dead_letters(self.settings, lambda: self.clients.credential)


@cache
def current() -> Runtime:
    """The process-wide runtime, from the environment (the Functions host's app settings)."""
    return Runtime.from_settings(Settings.from_env())
