"""Settings: parsing, validation, and the promise that README and code list the same ones."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from handlers.core.settings import (
    AZURITE_CONNECTION_STRING,
    NAMES,
    SPECS,
    Settings,
    SettingsError,
    markdown_table,
)

ROOT = Path(__file__).resolve().parent.parent


def test_every_field_has_exactly_one_spec() -> None:
    assert sorted(s.field for s in SPECS) == sorted(f.name for f in dataclasses.fields(Settings))
    assert len(set(NAMES)) == len(NAMES)


def test_defaults_match_the_dataclass_defaults() -> None:
    assert Settings.from_env({}) == Settings(storage_connection=AZURITE_CONNECTION_STRING)


def test_values_are_parsed() -> None:
    s = Settings.from_env(
        {
            "DRY_RUN": "off",
            "SUBSCRIPTION_IDS": " A , b ,",
            "RETRY_DAILY_CAP": "9",
            "TICKET_LANGUAGE": "JA",
            "AZURE_MANAGEMENT_URL": "https://127.0.0.1:8443/",
        }
    )
    assert (s.dry_run, s.subscription_ids, s.retry_daily_cap) == (False, {"a", "b"}, 9)
    assert s.ticket_language == "ja"
    assert s.management_url == "https://127.0.0.1:8443"
    assert s.in_scope("B") and not s.in_scope("c")


def test_retry_learning_and_ticket_reopening_can_be_switched_off() -> None:
    s = Settings.from_env({"RETRY_LEARN_FAILED_NIGHTS": "0", "TICKET_REOPEN_DAYS": "0"})
    assert (s.retry_learn_failed_nights, s.retry_learn_window_nights) == (0, 4)
    assert s.ticket_reopen_days == 0


def test_identity_based_storage_needs_no_connection_string() -> None:
    s = Settings.from_env(
        {"AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net"}
    )
    assert s.storage_connection == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DRY_RUN": "maybe"}, "DRY_RUN='maybe'"),
        ({"TICKET_LANGUAGE": "fr"}, "TICKET_LANGUAGE='fr'"),
        ({"RETRY_DAILY_CAP": "10"}, "RETRY_DAILY_CAP='10': must be 1 to 9"),
        ({"CLAIM_LEASE_SECONDS": "-1"}, "CLAIM_LEASE_SECONDS='-1'"),
        ({"TABLE_NAME_PREFIX": "bad-prefix"}, "TABLE_NAME_PREFIX='bad-prefix'"),
        (
            {"SERVICENOW_INSTANCE_URL": "http://example.com"},
            "SERVICENOW_INSTANCE_URL: must be an https",
        ),
        (
            {"RETRY_LEARN_FAILED_NIGHTS": "5"},
            "RETRY_LEARN_FAILED_NIGHTS=5 is more than RETRY_LEARN_WINDOW_NIGHTS=4",
        ),
        ({"RETRY_LEARN_WINDOW_NIGHTS": "15"}, "RETRY_LEARN_WINDOW_NIGHTS='15': must be 1 to 14"),
        ({"RETRY_LEARN_WINDOW_NIGHTS": "0"}, "RETRY_LEARN_WINDOW_NIGHTS='0': must be 1 to 14"),
        ({"TICKET_REOPEN_DAYS": "91"}, "TICKET_REOPEN_DAYS='91': must be 0 to 90"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


def test_secrets_are_listed_for_log_scrubbing() -> None:
    s = Settings.from_env({"SERVICENOW_PASSWORD": "hunter2", "AZURE_DEVOPS_PAT": "pat-123"})
    assert {"hunter2", "pat-123"} <= set(s.secrets())


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"<!-- settings:start.*?-->\n(.*?)<!-- settings:end -->", readme, re.DOTALL)
    assert section is not None
    assert section.group(1) == markdown_table(), "regenerate with: python -m handlers.core.settings"
