"""Azure Resource Manager ids: the one parser and the one formatter of the app.

ARM compares ids case-insensitively and Azure itself spells them several ways
(``/Subscriptions/`` in job ids, ``/Vaults/`` in some vault lists), so parsing ignores the case
of the fixed segments and keeps the names as given.

>>> vault = VaultRef.parse("/Subscriptions/s1/resourceGroups/rg/providers/"
...                        "Microsoft.RecoveryServices/Vaults/v1")
>>> vault, vault.id
(VaultRef(subscription_id='s1', resource_group='rg', name='v1'), \
'/subscriptions/s1/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v1')
>>> job_ref(vault.id + "/backupJobs/j-1")
(VaultRef(subscription_id='s1', resource_group='rg', name='v1'), 'j-1')
>>> VmRef.parse("/subscriptions/s1/resourcegroups/rg-vm/providers/microsoft.compute/"
...             "virtualmachines/vm1").name
'vm1'
>>> vm_from_container("IaasVMContainer;iaasvmcontainerv2;rg-vm;vm1")
('rg-vm', 'vm1')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

_SEGMENT = r"[^/]+"
_GROUP_PREFIX = rf"^/subscriptions/(?P<sub>{_SEGMENT})/resourcegroups/(?P<rg>{_SEGMENT})"
_VAULTS = "Microsoft.RecoveryServices/vaults"
_JOB = re.compile(
    _GROUP_PREFIX + rf"/providers/{re.escape(_VAULTS)}/(?P<name>{_SEGMENT})"
    rf"/backupjobs/(?P<job>{_SEGMENT})/?$",
    re.IGNORECASE,
)
#: The Backup container of an Azure VM: ``[IaasVMContainer;]iaasvmcontainerv2;{rg};{vm}``.
VM_CONTAINER_KIND = "iaasvmcontainerv2"


class ArmIdError(ValueError):
    """The text is not an ARM id of the expected kind; the message quotes it (bounded)."""


def _match(pattern: re.Pattern[str], text: str, kind: str) -> re.Match[str]:
    found = pattern.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ArmIdError(f"not a {kind} id: {str(text)[:200]!r}")
    return found


@dataclass(frozen=True)
class _GroupResource:
    """A resource directly under a resource group: ``…/providers/{type}/{name}``."""

    subscription_id: str
    resource_group: str
    name: str
    _TYPE: ClassVar[str] = ""
    _KIND: ClassVar[str] = ""

    @classmethod
    def parse(cls, text: str) -> Self:
        """:raises ArmIdError: ``text`` is not an id of this kind of resource."""
        pattern = _GROUP_PREFIX + rf"/providers/{re.escape(cls._TYPE)}/(?P<name>{_SEGMENT})/?$"
        found = _match(re.compile(pattern, re.IGNORECASE), text, cls._KIND)
        return cls(found["sub"], found["rg"], found["name"])

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self._TYPE}/{self.name}"
        )


@dataclass(frozen=True)
class VaultRef(_GroupResource):
    """A Recovery Services vault."""

    _TYPE: ClassVar[str] = _VAULTS
    _KIND: ClassVar[str] = "Recovery Services vault"


@dataclass(frozen=True)
class VmRef(_GroupResource):
    """An Azure virtual machine."""

    _TYPE: ClassVar[str] = "Microsoft.Compute/virtualMachines"
    _KIND: ClassVar[str] = "virtual machine"


def job_ref(text: str) -> tuple[VaultRef, str]:
    """The vault and the job name (GUID) of a backup job id.

    :raises ArmIdError: ``text`` is not a backup job id.
    """
    found = _match(_JOB, text, "Recovery Services backup job")
    return VaultRef(found["sub"], found["rg"], found["name"]), found["job"]


_ITEM = re.compile(
    _GROUP_PREFIX + rf"/providers/{re.escape(_VAULTS)}/(?P<name>{_SEGMENT})/backupfabrics/"
    rf"{_SEGMENT}/protectioncontainers/(?P<container>{_SEGMENT})/protecteditems/(?P<item>{_SEGMENT})/?$",
    re.IGNORECASE,
)


def item_ref(text: str) -> tuple[VaultRef, str, str]:
    """The vault, the container name and the item name of a protected item's id.

    >>> vault, container, item = item_ref(
    ...     "/subscriptions/s/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v"
    ...     "/backupFabrics/Azure/protectionContainers/VMAppContainer;Compute;rg-vm;vm1"
    ...     "/protectedItems/SQLDataBase;mssqlserver;db1")
    >>> vault.name, container, item
    ('v', 'VMAppContainer;Compute;rg-vm;vm1', 'SQLDataBase;mssqlserver;db1')

    :raises ArmIdError: ``text`` is not a protected item id.
    """
    found = _match(_ITEM, text, "protected item")
    vault = VaultRef(found["sub"], found["rg"], found["name"])
    return vault, found["container"], found["item"]


def vm_from_container(container: str) -> tuple[str, str]:
    """``(resource group, VM name)`` from a VM's Backup container or item name; ``("", "")``
    when it names no Azure VM."""
    parts = container.split(";")
    if len(parts) >= 3 and parts[-3].lower() == VM_CONTAINER_KIND:
        return parts[-2], parts[-1]
    return "", ""
