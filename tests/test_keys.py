"""Table keys from hostile names: valid for the service, deterministic, distinct."""

from __future__ import annotations

import pytest
from azure.data.tables import TableServiceClient

from handlers.storage.keys import MAX_KEY_CHARS, inverted_ticks, safe_key

HOSTILE = [
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
    "back\\slash",
    "hash#tag",
    "what?now",
    "percent%41",
    "tilde~x",
    "ctrl\x00\x01\x1f\x7f\x85end",
    "名前付き仮想マシン",
    "emoji-🙂-vm",
    "v" * 1_000,
    "/" * 1_000,
    "lone\ud800surrogate",
    "",
    " spaces  ",
]
FORBIDDEN = set("/\\#?") | {chr(c) for c in range(0x20)} | {chr(c) for c in range(0x7F, 0xA0)}


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_key_has_no_forbidden_characters_and_is_bounded(name: str) -> None:
    key = safe_key(name)
    assert not FORBIDDEN & set(key)
    assert 0 < len(key) <= MAX_KEY_CHARS
    key.encode("utf-8")  # no lone surrogate survives
    assert safe_key(name) == key


def test_keys_are_case_insensitive_like_arm() -> None:
    assert safe_key("VM-Web-01") == safe_key("vm-web-01")


def test_distinct_names_give_distinct_keys() -> None:
    names = [
        *HOSTILE,
        "a/b",
        "a%2Fb",
        "a~b",
        "v" * 999,
        "v" * 1_001,
        "x" * 500 + "1",
        "x" * 500 + "2",
    ]
    keys = [safe_key(n) for n in names]
    assert len(set(keys)) == len({n.lower() for n in names})


def test_inverted_ticks_sort_newest_first() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 25, tzinfo=UTC)
    later, earlier = inverted_ticks(now + timedelta(microseconds=10)), inverted_ticks(now)
    assert later < earlier
    assert len(later) == len(earlier) == 19


def test_hostile_keys_round_trip_through_azurite(azurite) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    table = service.create_table_if_not_exists("hostilekeys")
    for i, name in enumerate(HOSTILE):
        key = safe_key(name)
        table.upsert_entity({"PartitionKey": key, "RowKey": key, "Index": i})
        assert table.get_entity(key, key)["Index"] == i
    assert len(list(table.list_entities())) == len(HOSTILE)
