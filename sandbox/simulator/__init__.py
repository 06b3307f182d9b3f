"""A local, stateful HTTPS simulator of the Azure Backup, Compute, Storage (accounts and file
shares) and vault-list REST APIs.

Test and demo infrastructure: the project's real SDK clients talk to it as they would to Azure.
It serves Azure's real shapes (``sim.shapes = "azure"``, taken from ``azure_payloads/``) or its
original idealised ones (``"ideal"``), and header names in lower case or as written
(``sim.header_case``); see :mod:`sandbox.simulator.shapes` for the defaults.
"""

from sandbox.simulator.credential import StaticCredential
from sandbox.simulator.faults import FAULT_KINDS, MUA_DENIED_CODE
from sandbox.simulator.kinds import FILE_SHARE_DAILY_LIMIT, WORKLOAD_DAILY_LIMIT
from sandbox.simulator.protocol import Call
from sandbox.simulator.routes import (
    BACKUP_API_VERSIONS,
    COMPUTE_API_VERSIONS,
    LRO_URL_API_VERSIONS,
    ROUTE_NAMES,
    STORAGE_API_VERSIONS,
    VAULTS_API_VERSIONS,
)
from sandbox.simulator.shapes import (
    AZURE,
    CANONICAL,
    DEFAULT_HEADER_CASE,
    DEFAULT_SHAPES,
    HEADER_CASE_ENV,
    IDEAL,
    LOWER,
    SHAPES_ENV,
    failed_job_json,
)
from sandbox.simulator.simulator import AzureSimulator
from sandbox.simulator.state import (
    BACKUP_IN_PROGRESS_CODE,
    ITEM_NOT_FOUND_CODE,
    ON_DEMAND_DAILY_LIMIT,
    QUOTA_EXCEEDED_CODE,
    SIMPLE_RECOVERY_MODEL,
    WORKLOAD_CONFLICT_CODE,
)
from sandbox.simulator.storage import SHARE_RETENTION_DAYS

__all__ = [
    "AZURE",
    "BACKUP_API_VERSIONS",
    "BACKUP_IN_PROGRESS_CODE",
    "CANONICAL",
    "COMPUTE_API_VERSIONS",
    "DEFAULT_HEADER_CASE",
    "DEFAULT_SHAPES",
    "FAULT_KINDS",
    "FILE_SHARE_DAILY_LIMIT",
    "HEADER_CASE_ENV",
    "IDEAL",
    "ITEM_NOT_FOUND_CODE",
    "LOWER",
    "LRO_URL_API_VERSIONS",
    "MUA_DENIED_CODE",
    "ON_DEMAND_DAILY_LIMIT",
    "QUOTA_EXCEEDED_CODE",
    "ROUTE_NAMES",
    "SHAPES_ENV",
    "SHARE_RETENTION_DAYS",
    "SIMPLE_RECOVERY_MODEL",
    "STORAGE_API_VERSIONS",
    "VAULTS_API_VERSIONS",
    "WORKLOAD_CONFLICT_CODE",
    "WORKLOAD_DAILY_LIMIT",
    "AzureSimulator",
    "Call",
    "StaticCredential",
    "failed_job_json",
]
