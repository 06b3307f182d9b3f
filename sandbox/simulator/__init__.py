"""A local, stateful HTTPS simulator of the Azure Backup, Compute and vault-list REST APIs.

Test and demo infrastructure: the project's real SDK clients talk to it as they would to Azure.
"""

from sandbox.simulator.credential import StaticCredential
from sandbox.simulator.faults import FAULT_KINDS, MUA_DENIED_CODE
from sandbox.simulator.protocol import Call
from sandbox.simulator.resources import failed_job_json
from sandbox.simulator.routes import (
    BACKUP_API_VERSIONS,
    COMPUTE_API_VERSIONS,
    ROUTE_NAMES,
    VAULTS_API_VERSIONS,
)
from sandbox.simulator.simulator import AzureSimulator
from sandbox.simulator.state import (
    BACKUP_IN_PROGRESS_CODE,
    ITEM_NOT_FOUND_CODE,
    ON_DEMAND_DAILY_LIMIT,
    QUOTA_EXCEEDED_CODE,
)

__all__ = [
    "BACKUP_API_VERSIONS",
    "BACKUP_IN_PROGRESS_CODE",
    "COMPUTE_API_VERSIONS",
    "FAULT_KINDS",
    "ITEM_NOT_FOUND_CODE",
    "MUA_DENIED_CODE",
    "ON_DEMAND_DAILY_LIMIT",
    "QUOTA_EXCEEDED_CODE",
    "ROUTE_NAMES",
    "VAULTS_API_VERSIONS",
    "AzureSimulator",
    "Call",
    "StaticCredential",
    "failed_job_json",
]
