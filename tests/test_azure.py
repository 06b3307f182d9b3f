"""The Azure layer's own promises: one connection pool for every subscription, bounded client
count, headers read whatever their case."""

from __future__ import annotations

from typing import Any

from handlers.azure.backup import header
from handlers.azure.clients import MAX_CLIENTS, AzureClients
from handlers.core.settings import Settings
from sandbox.simulator import AzureSimulator
from tests.conftest import FAST_CLIENTS


def _transport(client: Any) -> Any:
    """The transport at the end of a client's pipeline (private, read for this check only)."""
    policy = client._client._pipeline
    while not hasattr(policy, "_transport"):
        policy = policy._next
    return policy._transport


def test_clients_of_every_subscription_share_one_transport(sim: AzureSimulator) -> None:
    settings = Settings(management_url=sim.base_url, ca_bundle=sim.ca_pem_path, static_token="t")
    clients = AzureClients(settings, FAST_CLIENTS)
    subscriptions = [f"00000000-0000-4000-8000-{n:012d}" for n in range(300)]
    for subscription in subscriptions[:20]:  # real calls through the shared pool
        assert list(clients.vaults(subscription).vaults.list_by_subscription_id()) == []
    made = [clients.backup(s) for s in subscriptions] + [clients.compute(s) for s in subscriptions]
    assert {id(_transport(c)) for c in made} == {id(clients.transport)}
    assert len(clients._cache) == MAX_CLIENTS  # the least used are let go
    assert clients.compute(subscriptions[-1]) is made[-1]  # the recently used stay cached


def test_headers_are_read_in_any_case() -> None:
    for name in ("Azure-AsyncOperation", "azure-asyncoperation", "AZURE-ASYNCOPERATION"):
        assert header({name: "https://x/op"}, "Azure-AsyncOperation") == "https://x/op"
    assert header({"location": "u"}, "Azure-AsyncOperation") == ""
