"""Tests for the built-in rule set (rules/rules.yaml) and the rule-file contract.

The classification cases live in ``rule_cases.yaml`` next to this file; each one is a
parametrized test. The other tests check table coverage, the code list of error-codes.md,
the product's acceptance mapping, the unclassified fallback, schema errors and user rules.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules import default_rule_set
from rules.engine import UNCLASSIFIED, RuleSet
from rules.loader import BUILTIN_RULES, RuleFileError, load_rule_set, load_rules

CASES_FILE = Path(__file__).with_name("rule_cases.yaml")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def load_cases() -> list[dict[str, Any]]:
    """The cases of rule_cases.yaml, each with a readable pytest id."""
    cases = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    for number, case in enumerate(cases, 1):
        rule = case.get("expect") or f"not-{case['not']}"
        text = case["message"] or f"code {case['code']}"
        ascii_words = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "japanese-text"
        case["id"] = f"{number:03d}-{rule}-{ascii_words}"
    return cases


CASES = load_cases()


@pytest.fixture(scope="module")
def builtin() -> RuleSet:
    return load_rule_set()


def classify(rule_set: RuleSet, code: object, message: str | None = None, operation: str = ""):
    return rule_set.classify([] if code is None else [code], message, operation)


# ------------------------------------------------------------------- the case file


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(builtin: RuleSet, case: dict[str, Any]) -> None:
    decision = classify(builtin, case["code"], case["message"], case.get("operation", ""))
    if "expect" in case:
        assert decision.rule == case["expect"], decision
    else:
        assert decision.rule != case["not"], decision


def test_every_rule_has_positive_and_negative_cases(builtin: RuleSet) -> None:
    ids = {rule.id for rule in builtin.rules}
    positive = {c["expect"] for c in CASES if "expect" in c}
    negative = {c["not"] for c in CASES if "not" in c}
    assert positive <= ids, positive - ids
    assert negative <= ids, negative - ids
    assert ids - positive == set()
    assert ids - negative == set()


# ------------------------------------------------------------------- (1) table coverage

TABLE_ROWS = (
    [f"B{n}" for n in range(1, 17)]
    + [f"J{n}" for n in range(1, 5)]
    + [f"R{n}" for n in range(1, 12)]
    + ["P1"]
)


@pytest.mark.parametrize("row", TABLE_ROWS)
def test_every_table_row_belongs_to_a_rule(builtin: RuleSet, row: str) -> None:
    assert any(row in rule.rows for rule in builtin.rules), row


def test_no_row_is_claimed_twice(builtin: RuleSet) -> None:
    rows = [row for rule in builtin.rules for row in rule.rows]
    assert len(rows) == len(set(rows))


# ------------------------------------------------------------------- (2) every documented code

# error-codes.md sections 2.1 and 2.2 (copied here on purpose: tests do not read ../shared).
CROSS_SUB = "restore-cross-subscription-not-supported"
CODE_TO_RULE: dict[object, str] = {
    "CopyingVHDsFromBackUpVaultTakingLongTime": "copy-to-vault-timed-out",
    "BackUpOperationFailed": "backup-internal-error",
    "BackUpOperationFailedV2": "backup-internal-error",
    "VMRestorePointInternalError": "antivirus-blocks-backup-extension",
    "UserErrorVmNotInDesirableState": "vm-not-in-backup-state",
    "VmNotInDesirableState": "vm-not-in-backup-state",
    "UserErrorFsFreezeFailed": "filesystem-freeze-failed",
    "ExtensionSnapshotFailedCOM": "snapshot-com-plus-error",
    "ExtensionInstallationFailedCOM": "com-plus-msdtc-extension-install-failed",
    "ExtensionInstallationFailedMDTC": "com-plus-msdtc-extension-install-failed",
    "ExtensionFailedVssWriterInBadState": "vss-writers-bad-state",
    "ExtensionFailedVssServiceInBadState": "vss-service-bad-state",
    "ExtensionConfigParsingFailure": "extension-config-parsing-failure",
    "ExtensionStuckInDeletionState": "extension-stuck-in-deletion",
    "ExtensionFailedSnapshotLimitReachedError": "disk-snapshot-limit-reached",
    "ExtensionFailedTimeoutVMNetworkUnresponsive": "vm-resources-inadequate",
    320001: "vm-not-found",
    "ResourceNotFound": "vm-not-found",
    400094: "vm-not-found",
    "BCMV2VMNotFound": "vm-not-found",
    "UserErrorVmNotFoundV2": "vm-not-found",
    "UserErrorVmNotFound": "vm-not-found",
    "UserErrorBCMPremiumStorageQuotaError": "premium-storage-account-full",
    380008: "recovery-services-extension-install-failed",
    "AzureVmOffline": "recovery-services-extension-install-failed",
    "ExtensionSnapshotBitlockerError": "bitlocker-locked-drive-vss-error",
    "ExtensionSnapshotFailedNoSecureNetwork": "secure-channel-failed",
    "ExtensionVCRedistInstallationFailure": "vc-redist-install-failed",
    "UserErrorRequestDisallowedByPolicy": "azure-policy-blocks-snapshot",
    "UserErrorUnableToOpenMount": "mount-points-cannot-open",
    "UserErrorGuestAgentStatusUnavailable": "vm-agent-cannot-reach-backup-service",
    "GuestAgentSnapshotTaskStatusError": "vm-agent-snapshot-status-unavailable",
    "UserErrorVmProvisioningStateFailed": "vm-provisioning-state-failed",
    "UserErrorRpCollectionLimitReached": "restore-point-collection-limit",
    "UserErrorKeyvaultPermissionsNotConfigured": "key-vault-permissions-missing",
    "UserErrorKeyVaultPermissionsNotConfigured": "key-vault-permissions-missing",
    "UserErrorKeyvaultPermissionNotConfigured": "key-vault-permissions-missing",
    "ExtensionSnapshotFailedNoNetwork": "snapshot-no-network",
    "ExtensionOperationFailedForManagedDisks": "vmsnapshot-extension-failed",
    "ExtentionOperationFailed": "vmsnapshot-extension-failed",
    "UserErrorUnsupportedDiskSize": "disk-size-not-supported",
    "UserErrorBackupOperationInProgress": "backup-operation-in-progress",
    "SystemBackupOperationInProgress": "backup-operation-in-progress",
    "UserErrorCrpReportedUserError": "crp-reported-user-error",
    "UserErrorBcmDatasourceNotPresent": "vm-not-actively-protected",
    "UserErrorEncryptedVmNotSupportedWithDiskEx": "encrypted-vm-disk-exclusion-unsupported",
    "UserErrorEncryptedVmNotSupported": "encrypted-vm-bek-only",
    "BCMProtGetSaSUriAsyncError": "protection-storage-allocation-failed",
    "UserErrorMigrationFromTrustedLaunchVMToNonTrustedVMNotAllowed": (
        "trusted-launch-downgrade-not-allowed"
    ),
    # 2.2 restore and job-management codes
    "UserErrorSkuNotAvailable": "restore-vm-size-not-available",
    "UserErrorMarketPlaceVMNotSupported": "restore-marketplace-plan-missing",
    "UserErrorInstantRpNotFound": "restore-snapshot-not-found",
    "UserErrorCrossSubscriptionRestoreNotSupportedForOLR": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedForUnManagedAzureVM": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedForCRR": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedFromSnapshot": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreInvalidTenant": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedInvalidTenant": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreInvalidTargetSubscription": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedInvalidTargetSubscription": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedForEncryptedAzureVM": CROSS_SUB,
    "UserErrorCrossSubscriptionRestoreNotSupportedForTrustedLaunchAzureVM": CROSS_SUB,
    "UserErrorVmNotShutDown": "restore-vm-not-shut-down",
    "DiskEncryptionInternalError": "restore-key-vault-secret-error",
}


@pytest.mark.parametrize("code", list(CODE_TO_RULE), ids=str)
def test_every_documented_code_classifies_by_code_alone(builtin: RuleSet, code: object) -> None:
    decision = classify(builtin, code)
    assert decision.rule != UNCLASSIFIED
    assert decision.rule == CODE_TO_RULE[code]
    assert decision.matched_by == "code"


@pytest.mark.parametrize("code", [320001, "320001", 400094, "400094", " 0400094 ", 380008])
def test_numeric_codes_match_as_int_and_as_string(builtin: RuleSet, code: object) -> None:
    assert classify(builtin, code).rule == CODE_TO_RULE[int(str(code))]


def test_codes_match_case_insensitively(builtin: RuleSet) -> None:
    for code, rule in CODE_TO_RULE.items():
        if isinstance(code, str):
            assert classify(builtin, code.lower()).rule == rule
            assert classify(builtin, code.upper()).rule == rule


# ------------------------------------------------------------------- (3) acceptance mapping

ACCEPTANCE = [
    # (code, message, action, category)
    ("CopyingVHDsFromBackUpVaultTakingLongTime", None, "retry", "transient"),
    (None, "Copying backed up data from vault timed out", "retry", "transient"),
    ("BackUpOperationFailed", None, "retry", "transient"),
    (None, "Backup failed with an internal error - Please retry", "retry", "transient"),
    (
        "BackUpOperationFailedV2",
        "The backups of VMs have failed after the policy migration from Standard to Enhanced.",
        "ticket",
        "support",
    ),
    ("UserErrorBackupOperationInProgress", None, "retry", "concurrency"),
    ("UserErrorVmNotInDesirableState", None, "retry", "vm_state"),
    (400094, None, "stop_protection", "vm_missing"),
    ("320001", None, "stop_protection", "vm_missing"),
    ("UserErrorVmNotFoundV2", None, "stop_protection", "vm_missing"),
    (None, "Azure Virtual Machine Not Found.", "stop_protection", "vm_missing"),
    ("UserErrorGuestAgentStatusUnavailable", None, "ticket", "vm_agent"),
    ("GuestAgentSnapshotTaskStatusError", None, "ticket", "vm_agent"),
    ("ExtensionOperationFailedForManagedDisks", None, "ticket", "extension"),
    ("ExtensionConfigParsingFailure", None, "ticket", "extension"),
    ("ExtensionFailedVssWriterInBadState", None, "ticket", "snapshot"),
    ("ExtensionFailedVssServiceInBadState", None, "ticket", "snapshot"),
    ("UserErrorKeyvaultPermissionsNotConfigured", None, "ticket", "encryption"),
    ("ExtensionSnapshotFailedNoNetwork", None, "ticket", "network"),
    ("UserErrorRpCollectionLimitReached", None, "ticket", "capacity"),
    ("UserErrorRequestDisallowedByPolicy", None, "ticket", "policy"),
    (None, "Failed to create the policy - Please reduce the retention choices", "ticket", "policy"),
    ("UserErrorSkuNotAvailable", None, "ticket", "restore"),
    (
        None,
        "Selected subnet does not exist - Please select a subnet which exists",
        "ticket",
        "restore",
    ),
    (None, "Restore failed with Cloud Internal error", "ticket", "restore"),
    (None, "Cancellation is not supported for this job type", "record", "job"),
    (None, "The job is not in a cancelable state", "record", "job"),
    (None, "Cannot cancel the job because it is not in progress", "record", "job"),
    (None, "Failed to cancel the Job - Please wait till job finishes.", "record", "job"),
]


@pytest.mark.parametrize(("code", "message", "action", "category"), ACCEPTANCE)
def test_acceptance_mapping(
    builtin: RuleSet, code: object, message: str | None, action: str, category: str
) -> None:
    decision = classify(builtin, code, message)
    assert (decision.action, decision.category) == (action, category), decision


def test_retry_parameters_of_the_retry_rules(builtin: RuleSet) -> None:
    storage = classify(builtin, "CopyingVHDsFromBackUpVaultTakingLongTime")
    assert (storage.params["delay_minutes"], storage.params["max_attempts"]) == (30, 2)
    internal = classify(builtin, "BackUpOperationFailed")
    assert (internal.params["delay_minutes"], internal.params["max_attempts"]) == (30, 2)
    in_progress = classify(builtin, "UserErrorBackupOperationInProgress")
    assert in_progress.params["max_attempts"] == 1
    assert in_progress.params["delay_minutes"] >= 30
    vm_state = classify(builtin, "VmNotInDesirableState")
    assert vm_state.params["max_attempts"] == 1
    assert vm_state.params["delay_minutes"] >= 30
    assert storage.as_dict()["retry"] == {"delay_minutes": 30, "max_attempts": 2}


def test_every_restore_rule_is_a_restore_ticket_and_stays_usable_without_operation(
    builtin: RuleSet,
) -> None:
    restore_rules = [r for r in builtin.rules if r.category == "restore"]
    assert len(restore_rules) >= 11
    for rule in restore_rules:
        assert rule.action == "ticket"
        assert rule.applies_to("")
        assert rule.applies_to("Restore")
        assert rule.applies_to("CrossRegionRestore")


# ------------------------------------------------------------------- (4) nothing matched


def test_nothing_matched_is_unclassified_ticket_with_raw_error(builtin: RuleSet) -> None:
    message = "The flux capacitor of the backup datacenter overheated."
    decision = builtin.classify(["SomeBrandNewErrorCode", 999999], message, "Backup")
    assert decision.rule == UNCLASSIFIED
    assert decision.action == "ticket"
    assert decision.matched_by == "none"
    assert decision.raw_error == {"codes": ["SomeBrandNewErrorCode", "999999"], "message": message}
    assert decision.as_dict()["raw_error"]["message"] == message
    assert decision.remediation and JAPANESE.search(decision.remediation_ja)


def test_empty_input_is_unclassified(builtin: RuleSet) -> None:
    decision = builtin.classify([], None)
    assert decision.rule == UNCLASSIFIED
    assert decision.action == "ticket"


# ------------------------------------------------------------------- (5) restore vs backup

RESTORE_INTERNAL = [
    "Restore failed with Cloud Internal error",
    "Restore failed with a cloud internal error.",
    "クラウドの内部エラーの復元に失敗しました",
    "RESTORE  FAILED WITH CLOUD INTERNAL ERROR",
    "Azure Backup job 42 (restore of web01): Restore failed with Cloud Internal error",
    "Azure Backup ジョブ: クラウドの内部エラーの復元に失敗しました",
    "バックアップ項目 web01: クラウドの内部エラーの復元に失敗しました",
]


@pytest.mark.parametrize("message", RESTORE_INTERNAL)
@pytest.mark.parametrize("operation", ["", "Restore"])
def test_restore_internal_error_is_not_the_backup_internal_error(
    builtin: RuleSet, message: str, operation: str
) -> None:
    decision = builtin.classify([], message, operation)
    assert decision.rule == "restore-cloud-internal-error"
    assert decision.action == "ticket"


@pytest.mark.parametrize(
    "message",
    [
        "Backup failed with an internal error - Please retry the operation in a few minutes.",
        "バックアップ操作は内部エラーのため失敗しました - 数分以内に操作をやり直してください。",
        "内部エラーが発生したため、バックアップに失敗しました。",
    ],
)
def test_backup_internal_error_in_english_and_japanese(builtin: RuleSet, message: str) -> None:
    decision = builtin.classify([], message, "Backup")
    assert decision.rule == "backup-internal-error"
    assert decision.action == "retry"


# ------------------------------------------------------------------- (6) broken rule files

VALID_RULE = """\
  - id: good-rule
    title: A valid rule
    category: transient
    action: ticket
    match: {codes: [GoodCode]}
    remediation: {en: "Do this.", ja: "これを行います。"}
    doc: https://learn.microsoft.com/azure/backup/
"""


def _rule_file(tmp_path: Path, name: str, broken_rule: str) -> Path:
    path = tmp_path / name
    text = "schema_version: 1\nrules:\n" + VALID_RULE + textwrap.indent(broken_rule, "  ")
    path.write_text(text, encoding="utf-8")
    return path


def _broken(rule_id: str, action: str = "ticket", extra: str = "", match: str = "{codes: [X1]}"):
    return (
        f"- id: {rule_id}\n  title: Broken\n  category: transient\n  action: {action}\n"
        f"{extra}  match: {match}\n"
        '  remediation: {en: "x", ja: "エックス"}\n  doc: https://learn.microsoft.com/x\n'
    )


BROKEN = [
    ("bad-action.yaml", _broken("bad-action-rule", action="reboot"), "bad-action-rule", "reboot"),
    (
        "retry-missing.yaml",
        _broken("retry-without-parameters", action="retry"),
        "retry-without-parameters",
        "'retry' is a required property",
    ),
    ("duplicate.yaml", _broken("good-rule"), "good-rule", "duplicate id"),
    (
        "empty-term.yaml",
        _broken("empty-term-rule", match='{text: [{all: [""]}]}'),
        "empty-term-rule",
        "does not match",
    ),
    (
        "placeholder-term.yaml",
        _broken("placeholder-term-rule", match='{text: [{all: ["&2;"]}]}'),
        "placeholder-term-rule",
        "no letters or digits",
    ),
    (
        "too-many-attempts.yaml",
        _broken(
            "greedy-retry-rule",
            action="retry",
            extra="  retry: {delay_minutes: 5, max_attempts: 10}\n",
        ),
        "greedy-retry-rule",
        "maximum of 9",
    ),
]


@pytest.mark.parametrize(("name", "rule", "rule_id", "reason"), BROKEN, ids=[b[0] for b in BROKEN])
def test_schema_rejects_broken_rule_files(
    tmp_path: Path, name: str, rule: str, rule_id: str, reason: str
) -> None:
    path = _rule_file(tmp_path, name, rule)
    with pytest.raises(RuleFileError) as error:
        load_rules(path)
    message = str(error.value)
    assert name in message
    assert repr(rule_id) in message
    assert reason in message


def test_yaml_syntax_error_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "syntax-error.yaml"
    path.write_text("schema_version: 1\nrules:\n  - id: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as error:
        load_rules(path)
    message = str(error.value)
    assert "syntax-error.yaml" in message
    assert "cannot read rules" in message
    assert "line 3" in message


def test_the_valid_part_of_the_broken_files_is_itself_valid(tmp_path: Path) -> None:
    path = tmp_path / "valid.yaml"
    path.write_text("schema_version: 1\nrules:\n" + VALID_RULE, encoding="utf-8")
    assert [rule.id for rule in load_rules(path)] == ["good-rule"]


# ------------------------------------------------------------------- (7) user rules


USER_RULES = """\
schema_version: 1
rules:
  - id: copy-to-vault-timed-out
    title: Our storage team handles copy timeouts
    category: support
    action: ticket
    match: {codes: [CopyingVHDsFromBackUpVaultTakingLongTime]}
    remediation: {en: "Page the storage team.", ja: "ストレージ チームに連絡します。"}
    doc: https://learn.microsoft.com/azure/backup/backup-azure-vms-troubleshoot
  - id: planned-decommission
    title: VM removed by the decommission pipeline
    category: job
    action: record
    match:
      text:
        - all: [decommission pipeline]
    remediation: {en: "Expected; nothing to do.", ja: "想定どおりです。対応は不要です。"}
    doc: https://learn.microsoft.com/azure/backup/backup-azure-manage-vms
"""


@pytest.fixture
def with_user_rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "user-rules.yaml"
    path.write_text(USER_RULES, encoding="utf-8")
    return load_rule_set(path)


def test_user_rule_with_the_same_id_replaces_the_builtin(
    builtin: RuleSet, with_user_rules: RuleSet
) -> None:
    decision = with_user_rules.classify(["CopyingVHDsFromBackUpVaultTakingLongTime"], "")
    assert decision.rule == "copy-to-vault-timed-out"
    assert decision.user_rule is True
    assert decision.action == "ticket"
    ids = [rule.id for rule in with_user_rules.rules]
    assert ids.count("copy-to-vault-timed-out") == 1
    assert len(with_user_rules) == len(builtin) + 1
    # the built-in text of that rule is gone with it
    text_only = with_user_rules.classify([], "Copying backed up data from vault timed out")
    assert text_only.rule == UNCLASSIFIED


def test_user_text_rule_beats_a_builtin_code_match(
    builtin: RuleSet, with_user_rules: RuleSet
) -> None:
    message = "The virtual machine doesn't exist (removed by the decommission pipeline)"
    assert builtin.classify([400094], message).rule == "vm-not-found"
    decision = with_user_rules.classify([400094], message)
    assert decision.rule == "planned-decommission"
    assert decision.user_rule is True
    assert decision.action == "record"
    assert decision.matched_by == "text"


def test_builtin_rules_still_apply_next_to_user_rules(with_user_rules: RuleSet) -> None:
    decision = with_user_rules.classify([400094], "")
    assert decision.rule == "vm-not-found"
    assert decision.user_rule is False


def test_default_rule_set_loads_the_builtin_file() -> None:
    rule_set = default_rule_set()
    assert len(rule_set) == len(load_rules(BUILTIN_RULES))
    assert rule_set.classify(["400094"], "").rule == "vm-not-found"


# ------------------------------------------------------------------- (8) rule content


def test_rule_count_and_ids(builtin: RuleSet) -> None:
    assert 55 <= len(builtin) <= 75
    for rule in builtin.rules:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", rule.id), rule.id
        assert rule.doc.startswith("https://learn.microsoft.com/azure/"), rule.id


def test_every_rule_has_english_and_japanese_remediation(builtin: RuleSet) -> None:
    for rule in builtin.rules:
        assert rule.remediation_en.strip(), rule.id
        assert rule.remediation_ja.strip(), rule.id
        assert JAPANESE.search(rule.remediation_ja), rule.id
        assert not JAPANESE.search(rule.remediation_en), rule.id


def test_remediation_lines_are_whole_sentences(builtin: RuleSet) -> None:
    """One step per line: no sentence is hard-wrapped across lines."""
    for rule in builtin.rules:
        for text in (rule.remediation_en, rule.remediation_ja):
            for line in text.splitlines():
                assert line.rstrip().endswith((".", "。", ")", ":")), (rule.id, line)


def test_retry_rules_are_bounded(builtin: RuleSet) -> None:
    retry_rules = [rule for rule in builtin.rules if rule.action == "retry"]
    assert {rule.id for rule in retry_rules} == {
        "copy-to-vault-timed-out",
        "backup-internal-error",
        "backup-operation-in-progress",
        "vm-not-in-backup-state",
    }
    for rule in retry_rules:
        assert 1 <= rule.params["max_attempts"] <= 9, rule.id
        assert rule.params["delay_minutes"] >= 1, rule.id
    for rule in builtin.rules:
        if rule.action != "retry":
            assert rule.params == {}, rule.id


def test_restore_point_collection_limit_is_never_retried(builtin: RuleSet) -> None:
    decision = classify(
        builtin,
        "UserErrorRpCollectionLimitReached",
        "The Restore Point collection max limit has reached.",
    )
    assert decision.action == "ticket"
    assert "retry" not in decision.as_dict()
