"""The switches between the simulator's two shapes and two header spellings, and their defaults.

``azure`` serves Azure's real shapes (:mod:`sandbox.simulator.azure`); ``ideal`` serves the
simulator's original idealised ones (:mod:`sandbox.simulator.ideal`). The ``azure`` shapes are
meant to be the default; ``ideal`` stays only for tests that need it and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from sandbox.simulator import resources as res
from sandbox.simulator.azure import AZURE, TIMESPAN, AzureShapes
from sandbox.simulator.ideal import IDEAL, IdealShapes
from sandbox.simulator.protocol import ArmError, JsonObject, Response
from sandbox.simulator.records import (
    BackupRun,
    ContainerRecord,
    ItemRecord,
    JobError,
    JobRecord,
    Operation,
    VaultRecord,
)
from sandbox.simulator.targets import vm_target_of

SHAPES = frozenset({AZURE, IDEAL})
# The shapes when BACKUP_SIM_SHAPES is not set. Issue #9: flip to AZURE once the product copes
# with Azure's real shapes; this line is the whole change.
DEFAULT_SHAPES = AZURE
SHAPES_ENV = "BACKUP_SIM_SHAPES"

# "lower": every response header name in lower case, as HTTP/2, proxies and Azure's recordings
# carry them; "canonical": as the simulator writes them (``Azure-AsyncOperation``).
LOWER = "lower"
CANONICAL = "canonical"
HEADER_CASES = frozenset({LOWER, CANONICAL})
DEFAULT_HEADER_CASE = LOWER
HEADER_CASE_ENV = "BACKUP_SIM_HEADER_CASE"


class Shapes(Protocol):
    """What a renderer provides; see :class:`~sandbox.simulator.azure.AzureShapes`."""

    def vault(self, vault: VaultRecord) -> JsonObject:
        """A vault resource."""
        ...

    def item(self, item: ItemRecord) -> JsonObject:
        """A protected item resource."""
        ...

    def container(self, container: ContainerRecord, item_count: int) -> JsonObject:
        """A protection container resource holding ``item_count`` protected items."""
        ...

    def recovery_point(self, item: ItemRecord, run: BackupRun) -> JsonObject:
        """The recovery point a completed backup of a VM item left."""
        ...

    def job(self, job: JobRecord, now: datetime) -> JsonObject:
        """A job as the job details GET returns it."""
        ...

    def job_summary(self, job: JobRecord, now: datetime) -> JsonObject:
        """A job as the job list returns it."""
        ...

    def operation_status(self, operation: Operation) -> JsonObject:
        """An ``OperationStatus`` document."""
        ...

    def lro_resource_id(self, item: ItemRecord) -> str:
        """The item path the polling URLs are built on."""
        ...

    def lro_api_version(self, request_version: str) -> str:
        """The api-version the polling URLs carry."""
        ...

    def accepted_headers(
        self, location: str, async_operation: str, retry_after: int, writes_left: int
    ) -> dict[str, str]:
        """Headers of the 202 to a trigger or PUT."""
        ...

    def pending_result_headers(
        self, location: str, async_operation: str, retry_after: int
    ) -> dict[str, str]:
        """Headers of the 202 of an operation result that is not ready."""
        ...

    def error(self, error: ArmError) -> Response:
        """An error answer."""
        ...


def checked(value: str, allowed: Collection[str], setting: str) -> str:
    """``value`` if it is one of ``allowed``.

    :param setting: what is being set, for the message.
    :raises ValueError: otherwise.
    """
    if value not in allowed:
        raise ValueError(f"{setting} must be one of {sorted(allowed)}, not {value!r}")
    return value


def default_shapes() -> str:
    """``BACKUP_SIM_SHAPES`` if set (and not empty), else :data:`DEFAULT_SHAPES`.

    :raises ValueError: if the variable holds an unknown value.
    """
    return checked(os.environ.get(SHAPES_ENV) or DEFAULT_SHAPES, SHAPES, SHAPES_ENV)


def default_header_case() -> str:
    """``BACKUP_SIM_HEADER_CASE`` if set (and not empty), else :data:`DEFAULT_HEADER_CASE`.

    :raises ValueError: if the variable holds an unknown value.
    """
    value = os.environ.get(HEADER_CASE_ENV) or DEFAULT_HEADER_CASE
    return checked(value, HEADER_CASES, HEADER_CASE_ENV)


def renderer(shapes: str, details_duration: str = TIMESPAN) -> Shapes:
    """The renderer of ``shapes``.

    :param details_duration: the form of durations in job details, for the ``azure`` shapes.
    """
    return AzureShapes(details_duration) if shapes == AZURE else IdealShapes()


def header_lines(headers: Iterable[tuple[str, str]], case: str) -> list[tuple[str, str]]:
    """Response headers with their names in ``case`` (:data:`LOWER` or :data:`CANONICAL`)."""
    if case == LOWER:
        return [(name.lower(), value) for name, value in headers]
    return list(headers)


def failed_job_json(
    vault_id: str,
    vm_name: str,
    vm_resource_group: str,
    error: tuple[int | str, str],
    start: datetime,
    *,
    shapes: str | None = None,
) -> JsonObject:
    """A failed ``AzureIaaSVMJob`` as the job details GET returns it, outside any simulator.

    For building events about jobs (benchmarks, hostile-input tests) without seeding state.

    :param error: ``(errorCode, errorString)``.
    :param shapes: the shapes; :func:`default_shapes` when ``None``.
    """
    name = str(uuid.uuid4())
    end = start + timedelta(minutes=30)
    subscription = vault_id.split("/")[2]
    job = JobRecord(
        vault_id=vault_id,
        name=name,
        target=vm_target_of(subscription, vm_resource_group, vm_name),
        operation=res.BACKUP,
        start=start,
        is_user_triggered=False,
        activity_id=str(uuid.uuid4()),
        updated=end,
    )
    failure = JobError(error[0], error[1])  # type: ignore[arg-type]
    job.set_status(res.FAILED, end=end, now=end, errors=(failure,))
    return renderer(shapes or default_shapes()).job(job, end)
