"""Multi-User Authorization: a vault's Resource Guard mapping, and the stop it refuses.

Shapes, from Azure's own payloads (``azure_payloads/SOURCES.md``):

- ``GET …/backupResourceGuardProxies``: the list the Azure CLI recorded
  (``recorded/rg_mapping_resource_guard_proxies_list.json``): one ``VaultProxy`` whose
  ``properties`` name the guard and one ``{vaultCriticalOperation, defaultResourceRequest}`` per
  protected operation; the six operations and request types served are that recording's.
- the vault GET's ``properties.securitySettings`` (``multiUserAuthorization`` ``Enabled`` or
  ``Disabled``): the keys of the spec example ``published/rs-2026-11-01-GETVault.json``.
- the critical operation of "stop protection with retain data": the Azure CLI's own mapping
  (``…/protectedItems/write#stopProtectionWithRetainData``).

Assumed (no public payload shows them): the request type of that operation's
``defaultResourceRequest`` (:data:`STOP_REQUEST_TYPE`), and how Azure refuses a stop the guard
protects. The only public report quotes its message alone ("ResourceGuard Operation requestid
is either null or empty", hashicorp/terraform-provider-azurerm#31887, for a ``ProtectionStopped``
PUT without ``resourceGuardOperationRequests``); its status and code are not known, so the
simulator answers ``400 BadRequest`` (its generic refusal) with that message, and a PUT that
names the request but whose caller holds no role on the guard gets ARM's linked-check refusal,
``403 LinkedAuthorizationFailed`` (also assumed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sandbox.simulator.azure_forms import format_time
from sandbox.simulator.protocol import ArmError, BackupError, JsonObject
from sandbox.simulator.records import VaultRecord

PROXY_NAME = "VaultProxy"
PROXY_TYPE = "Microsoft.RecoveryServices/vaults/backupResourceGuardProxies"
_VAULTS = "Microsoft.RecoveryServices/vaults"
STOP_WITH_RETAIN_DATA = (
    f"{_VAULTS}/backupFabrics/protectionContainers/protectedItems/write"
    "#stopProtectionWithRetainData"
)
#: Assumed: no published or recorded proxy shows this operation's request type.
STOP_REQUEST_TYPE = "stopProtectionWithRetainDataRequests"
#: The operations and request types of the recorded mapping, in its order.
RECORDED_OPERATIONS = (
    (f"{_VAULTS}/backupFabrics/protectionContainers/protectedItems/delete",
     "deleteProtectedItemRequests"),
    (f"{_VAULTS}/backupFabrics/protectionContainers/protectedItems/write",
     "updateProtectedItemRequests"),
    (f"{_VAULTS}/backupPolicies/write", "updateProtectionPolicyRequests"),
    (f"{_VAULTS}/backupResourceGuardProxies/delete", "deleteResourceGuardProxyRequests"),
    (f"{_VAULTS}/backupSecurityPIN/action", "getBackupSecurityPINRequests"),
    (f"{_VAULTS}/backupconfig/write", "disableSoftDeleteRequests"),
)  # fmt: skip
#: The refusal's message, verbatim from the public report (status and code assumed).
NO_REQUEST_MESSAGE = "ResourceGuard Operation requestid is either null or empty"


@dataclass
class GuardRecord:
    """A Resource Guard mapped to a vault.

    :ivar guard_id: the guard's ARM id.
    :ivar protects_stop: whether it protects "stop protection with retain data".
    :ivar mapped: when the mapping was made (its ``lastUpdatedTime``).
    """

    guard_id: str
    protects_stop: bool
    mapped: Any

    def operations(self) -> list[tuple[str, str]]:
        stop = [(STOP_WITH_RETAIN_DATA, STOP_REQUEST_TYPE)] if self.protects_stop else []
        return [*RECORDED_OPERATIONS, *stop]

    def request(self, request_type: str) -> str:
        return f"{self.guard_id}/{request_type}/default"


def proxies(vault: VaultRecord) -> list[JsonObject]:
    """The vault's ``backupResourceGuardProxies`` list (empty without a guard)."""
    guard = vault.guard
    if guard is None:
        return []
    details = [
        {"vaultCriticalOperation": op, "defaultResourceRequest": guard.request(kind)}
        for op, kind in guard.operations()
    ]
    return [
        {
            "id": f"{vault.id}/backupResourceGuardProxies/{PROXY_NAME}",
            "name": PROXY_NAME,
            "type": PROXY_TYPE,
            "properties": {
                "resourceGuardResourceId": guard.guard_id,
                "resourceGuardOperationDetails": details,
                "lastUpdatedTime": format_time(guard.mapped),
                "description": "resource guard for the sandbox",
            },
        }
    ]


def security_settings(vault: VaultRecord) -> JsonObject:
    """The vault GET's ``securitySettings`` (GETVault's keys; MUA as the mapping says)."""
    return {
        "immutabilitySettings": {"state": "Disabled"},
        "multiUserAuthorization": "Enabled" if vault.guard else "Disabled",
        "softDeleteSettings": {
            "enhancedSecurityState": "Enabled",
            "softDeleteRetentionPeriodInDays": 14,
            "softDeleteState": "Enabled",
        },
    }


def check_stop(vault: VaultRecord, properties: JsonObject) -> None:
    """Refuse a stop that the vault's Resource Guard protects (see the module's notes).

    :raises ArmError: the guard protects it; nothing is changed.
    """
    guard = vault.guard
    if guard is None or not guard.protects_stop:
        return
    requests = properties.get("resourceGuardOperationRequests") or []
    if guard.request(STOP_REQUEST_TYPE) not in requests:
        raise BackupError(400, "BadRequest", NO_REQUEST_MESSAGE)
    raise ArmError(
        403,
        "LinkedAuthorizationFailed",
        f"The client has no permission on the Resource Guard {guard.guard_id} for this "
        "critical operation.",
    )
