"""Replay of Azure's Multi-User Authorization payloads (issue #12 item 2): the vault GET's
``securitySettings`` and the vault's ``backupResourceGuardProxies`` list, served from the files
to the calls of ``handlers/azure/guard.py`` (no network).

The list is what the Azure CLI recorded in 2022, before Resource Guards knew "stop protection
with retain data": on it, our check must find no guard of the stop, and find one once the
operation the CLI maps (``…#stopProtectionWithRetainData``) is added in the same shape.
"""

from __future__ import annotations

import copy
from typing import Any

from handlers.azure.clients import AzureClients
from handlers.azure.guard import (
    STOP_WITH_RETAIN_DATA,
    guard_of,
    multi_user_authorization,
    stop_guard,
)
from handlers.core.ids import VaultRef
from tests.replay import (
    CLI_SUB,
    VAULT_PATH,
    Payloads,
    Replay,
    clients_fixture,  # noqa: F401 (fixture)
    ok,
    replay_fixture,  # noqa: F401 (fixture)
    spec_path,
)

GET_VAULT = "published/rs-2026-11-01-GETVault.json"
PROXY_GET = "published/rsb-2026-10-01-GetResourceGuardProxy.json"
PROXIES_RECORDED = "recorded/rg_mapping_resource_guard_proxies_list.json"

#: Every payload file a test here serves or compares with.
REPLAYED = frozenset({GET_VAULT, PROXY_GET, PROXIES_RECORDED})
#: Files of this topic no call of ours meets (none).
NOT_REPLAYED: dict[str, str] = {}

_files = Payloads(REPLAYED)
RECORDED_VAULT = VaultRef(CLI_SUB, "clitest.rg000001", "clitest-vault000002")


def _vault_of(name: str) -> VaultRef:
    parameters = _files.payload(name)["parameters"]
    return VaultRef(
        parameters["subscriptionId"], parameters["resourceGroupName"], parameters["vaultName"]
    )


def _with_mua(state: str) -> Any:
    """The published vault with ``multiUserAuthorization`` set (served at the recording's vault)."""
    body = copy.deepcopy(_files.body_of(GET_VAULT))
    body["properties"]["securitySettings"]["multiUserAuthorization"] = state
    return body


def _proxies(replay: Replay, vault: VaultRef, body: Any, source: str) -> None:
    replay.on("GET", f"{vault.id}/backupResourceGuardProxies", ok(source, body))


def test_the_published_vault_says_mua_is_disabled_and_no_guard_is_read(
    clients: AzureClients, replay: Replay
) -> None:
    vault = _vault_of(GET_VAULT)
    parameters = _files.payload(GET_VAULT)["parameters"]
    replay.on("GET", spec_path(VAULT_PATH, parameters), _files.published(GET_VAULT))
    assert multi_user_authorization(clients, vault) == "Disabled"
    assert stop_guard(clients, vault) is None
    assert replay.calls("GET", "backupResourceGuardProxies") == []
    assert {sent.query["api-version"] for sent in replay.calls("GET", "vaults/")} == {"2026-11-01"}


def test_the_recorded_mapping_guards_other_operations_not_the_stop(
    clients: AzureClients, replay: Replay
) -> None:
    replay.on("GET", RECORDED_VAULT.id, ok(GET_VAULT, _with_mua("Enabled")))  # another vault's
    replay.on(
        "GET", f"{RECORDED_VAULT.id}/backupResourceGuardProxies", _files.recorded(PROXIES_RECORDED)
    )
    assert stop_guard(clients, RECORDED_VAULT) is None
    (sent,) = replay.calls("GET", "backupResourceGuardProxies")
    assert sent.query["api-version"] == "2026-10-01"


def test_the_stop_operation_in_the_recorded_shape_is_found_with_its_request(
    clients: AzureClients, replay: Replay
) -> None:
    body = _files.recorded(PROXIES_RECORDED).body
    proxy = body["value"][0]["properties"]
    guard_id = proxy["resourceGuardResourceId"]
    request = f"{guard_id}/stopProtectionWithRetainDataRequests/default"  # its type: assumed
    proxy["resourceGuardOperationDetails"].append(
        {"vaultCriticalOperation": STOP_WITH_RETAIN_DATA, "defaultResourceRequest": request}
    )
    replay.on("GET", RECORDED_VAULT.id, ok(GET_VAULT, _with_mua("Enabled")))
    _proxies(replay, RECORDED_VAULT, body, PROXIES_RECORDED)
    guard = stop_guard(clients, RECORDED_VAULT)
    assert guard is not None
    assert (guard.guard_id, guard.operation, guard.request, guard.vault_id) == (
        guard_id,
        STOP_WITH_RETAIN_DATA,
        request,
        RECORDED_VAULT.id,
    )


def test_a_vault_that_shows_no_mua_setting_has_its_mapping_read(
    clients: AzureClients, replay: Replay
) -> None:
    """The published single proxy, served as the one item of the list our call reads."""
    body = copy.deepcopy(_files.body_of(GET_VAULT))
    del body["properties"]["securitySettings"]
    replay.on("GET", RECORDED_VAULT.id, ok(GET_VAULT, body))
    _proxies(replay, RECORDED_VAULT, {"value": [_files.body_of(PROXY_GET)]}, PROXY_GET)
    assert stop_guard(clients, RECORDED_VAULT) is None  # its two operations are not the stop
    assert len(replay.calls("GET", "backupResourceGuardProxies")) == 1
    assert guard_of([], RECORDED_VAULT) is None
