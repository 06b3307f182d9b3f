"""The storage clients: a connection string locally (Azurite), the managed identity in Azure.

Storage calls give up sooner than Azure management calls, so that a storage outage fails the
delivery (and the platform redelivers) instead of hanging it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.credentials import TokenCredential

from handlers.core.settings import Settings

RETRIES = 2
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 20

CredentialSource = Callable[[], TokenCredential]


def _options() -> dict[str, Any]:
    return {
        "retry_total": RETRIES,
        "connection_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
    }


def table_service(settings: Settings, credential: CredentialSource, **options: Any) -> Any:
    """``TableServiceClient`` for the app's account (``options`` add to the client's, e.g. a
    ``raw_request_hook`` that counts requests in the benchmarks)."""
    from azure.data.tables import TableServiceClient

    options = {**_options(), **options}
    if settings.storage_connection:
        return TableServiceClient.from_connection_string(settings.storage_connection, **options)
    return TableServiceClient(settings.table_service_uri, credential=credential(), **options)


def queue_client(settings: Settings, name: str, credential: CredentialSource) -> Any:
    """``QueueClient`` for ``name``, base64 messages (what the queue trigger expects)."""
    from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

    codec = {
        "message_encode_policy": BinaryBase64EncodePolicy(),
        "message_decode_policy": BinaryBase64DecodePolicy(),
    }
    if settings.storage_connection:
        return QueueClient.from_connection_string(
            settings.storage_connection, name, **codec, **_options()
        )
    return QueueClient(
        settings.queue_service_uri, name, credential=credential(), **codec, **_options()
    )


def blob_container(settings: Settings, name: str, credential: CredentialSource) -> Any:
    """``ContainerClient`` for ``name`` (the Event Grid dead-letter container)."""
    from azure.storage.blob import ContainerClient

    if settings.storage_connection:
        return ContainerClient.from_connection_string(
            settings.storage_connection, name, **_options()
        )
    return ContainerClient(settings.blob_service_uri, name, credential=credential(), **_options())
