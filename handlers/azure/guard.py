"""Multi-User Authorization: does a Resource Guard protect "stop protection, retain data" on a
vault, and what must be requested in it.

What is verified against Azure's own payloads (``sandbox/simulator/azure_payloads``, SOURCES.md):

- the vault GET's ``properties.securitySettings.multiUserAuthorization`` (``Enabled`` /
  ``Disabled``; the SDK knows ``Invalid`` too): REST spec example GETVault (2026-11-01);
- the vault's Resource Guard mapping, ``GET …/vaults/{v}/backupResourceGuardProxies``: a list of
  proxies (the CLI names its one ``VaultProxy``) whose ``properties`` hold the guard's
  ``resourceGuardResourceId`` and ``resourceGuardOperationDetails[]`` of
  ``{vaultCriticalOperation, defaultResourceRequest}``: a recorded Azure CLI response
  (2022-05-17) and the spec example GetResourceGuardProxy (2026-10-01);
- the critical operation of a stop that keeps the data, :data:`STOP_WITH_RETAIN_DATA`: the
  Azure CLI's own mapping (``RecoveryServicesStopProtection`` in its ``custom_help.py``), which
  sends that operation's ``defaultResourceRequest`` as the PUT's
  ``resourceGuardOperationRequests``.

Not verified (no public payload shows them): the request type in a guard's
``defaultResourceRequest`` for that operation, and the status and code ARM answers when a Resource
Guard refuses the PUT. The one public report (hashicorp/terraform-provider-azurerm#31887) quotes
only its message, "ResourceGuard Operation requestid is either null or empty", for a
``ProtectionStopped`` PUT on a guarded vault; so a refusal is recognised by its message or code
naming the Resource Guard, or by ARM's ``LinkedAuthorizationFailed`` (the linked access check
MUA is built on), whatever its status (:func:`is_resource_guard_refusal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.azure.clients import AzureClients
from handlers.azure.errors import AzureCallError, call, call_list
from handlers.core.ids import VaultRef

#: The Resource Guard's name for "stop protection and retain data" (Azure CLI custom_help.py).
STOP_WITH_RETAIN_DATA = (
    "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/write"
    "#stopProtectionWithRetainData"
)
#: How a person finds it in the portal's Resource Guard blade.
STOP_WITH_RETAIN_DATA_LABEL = "Stop protection with retain data"
#: ARM's code when a linked access check fails (MUA is one).
LINKED_AUTHORIZATION_FAILED = "linkedauthorizationfailed"


@dataclass(frozen=True)
class ResourceGuard:
    """A Resource Guard that protects the stop on a vault, as the vault's mapping says.

    :ivar guard_id: the Resource Guard's ARM id (``Microsoft.DataProtection/resourceGuards``).
    :ivar operation: the critical operation (:data:`STOP_WITH_RETAIN_DATA`).
    :ivar request: the guard's ``defaultResourceRequest`` for it (what the PUT must name).
    :ivar vault_id: the vault it guards.
    """

    guard_id: str
    operation: str
    request: str
    vault_id: str


def _json(model: Any) -> dict[str, Any]:
    """An SDK model by its JSON names (the generated models are mappings)."""
    return dict(model) if model is not None else {}


def multi_user_authorization(clients: AzureClients, vault: VaultRef) -> str:
    """The vault's ``securitySettings.multiUserAuthorization`` (``""`` when not shown)."""
    resource = call(
        clients.vaults(vault.subscription_id).vaults.get, vault.resource_group, vault.name
    )
    security = _json(_json(resource.properties).get("securitySettings"))
    return str(security.get("multiUserAuthorization") or "")


def guard_of(proxies: list[Any], vault: VaultRef) -> ResourceGuard | None:
    """The guard among a vault's Resource Guard proxies that protects the stop, or None."""
    for proxy in proxies:
        props = _json(proxy.properties)
        for detail in props.get("resourceGuardOperationDetails") or []:
            found = _json(detail)
            operation = str(found.get("vaultCriticalOperation", ""))
            if operation.lower() == STOP_WITH_RETAIN_DATA.lower():
                return ResourceGuard(
                    str(props.get("resourceGuardResourceId") or ""),
                    STOP_WITH_RETAIN_DATA,
                    str(found.get("defaultResourceRequest") or ""),
                    vault.id,
                )
    return None


def stop_guard(clients: AzureClients, vault: VaultRef) -> ResourceGuard | None:
    """The Resource Guard that protects stopping protection on ``vault``, or None.

    The proxies are read unless the vault says MUA is ``Disabled`` (a vault that shows no
    setting is read too: never assume it is off).

    :raises AzureCallError: a read failed (the caller decides what an unknown means).
    """
    if multi_user_authorization(clients, vault).lower() == "disabled":
        return None
    backup = clients.backup(vault.subscription_id)
    proxies = call_list(backup.resource_guard_proxies.get, vault.name, vault.resource_group)
    return guard_of(proxies, vault)


def is_resource_guard_refusal(error: AzureCallError) -> bool:
    """Whether Azure refused a call because of a Resource Guard (see the module's notes)."""
    said = f"{error.code} {error}".lower().replace(" ", "")
    return "resourceguard" in said or error.code.lower() == LINKED_AUTHORIZATION_FAILED
