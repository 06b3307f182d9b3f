"""Tests for the built-in rule set (rules/rules.yaml) and the rule-file contract.

The classification cases live in ``rule_cases.yaml`` next to this file; each one is a
parametrized test. The other tests check table coverage, the code list of error-codes.md,
the product's acceptance mapping, the unclassified fallback, schema errors, user rules, the
workload scope (SQL, HANA, Azure Files) with typed operations, and that every code of
workloads.md section 3 and of the portal's catalogue has a rule.
"""

from __future__ import annotations

import io
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules import default_rule_set
from rules.engine import (
    UNCLASSIFIED,
    WORKLOADS,
    RuleSet,
    normalize_operation,
    operation_keys,
)
from rules.loader import BUILTIN_RULES, SCHEMA_PATH, RuleFileError, load_rule_set, load_rules

CASES_FILE = Path(__file__).with_name("rule_cases.yaml")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def load_cases() -> list[dict[str, Any]]:
    """The cases of rule_cases.yaml, each with a readable pytest id."""
    cases = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    for number, case in enumerate(cases, 1):
        rule = case.get("expect") or f"not-{case['not']}"
        text = case["message"] or f"code {case['code']}"
        ascii_words = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "japanese-text"
        workload = f"{case['workload']}-" if case.get("workload") else ""
        case["id"] = f"{number:03d}-{workload}{rule}-{ascii_words}"
    return cases


CASES = load_cases()


@pytest.fixture(scope="module")
def builtin() -> RuleSet:
    return load_rule_set()


def classify(
    rule_set: RuleSet,
    code: object,
    message: str | None = None,
    operation: str = "",
    workload: str = "vm",
):
    return rule_set.classify([] if code is None else [code], message, operation, workload)


# ------------------------------------------------------------------- the case file


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(builtin: RuleSet, case: dict[str, Any]) -> None:
    decision = classify(
        builtin,
        case["code"],
        case["message"],
        case.get("operation", ""),
        case.get("workload", "vm"),
    )
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
    assert 160 <= len(builtin) <= 180
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


#: On-demand backups a workload allows per item and day (sql-support-matrix,
#: sap-hana-backup-support-matrix: three; azure-file-share-support-matrix: ten).
DAILY_ON_DEMAND = {"vm": 9, "sql": 3, "hana": 3, "files": 10}


def test_retry_rules_are_bounded(builtin: RuleSet) -> None:
    retry_rules = [rule for rule in builtin.rules if rule.action == "retry"]
    assert {rule.id for rule in retry_rules} == {
        "copy-to-vault-timed-out",
        "backup-internal-error",
        "backup-operation-in-progress",
        "vm-not-in-backup-state",
        "workload-conflicting-operation",
        "workload-daily-operation-limit",
        "hana-backup-cancelled-extension-upgrade",
        "files-backup-already-running",
        "files-backup-throttled",
        "files-data-transfer-failed",
        "files-item-locked",
    }
    for rule in retry_rules:
        limit = min(DAILY_ON_DEMAND[workload] for workload in rule.workloads)
        assert 1 <= rule.params["max_attempts"] <= min(limit, 9), rule.id
        assert rule.params["delay_minutes"] >= 1, rule.id
    for rule in builtin.rules:
        if rule.action not in ("retry", "await_healing"):
            assert rule.params == {}, rule.id


def test_restore_point_collection_limit_is_never_retried(builtin: RuleSet) -> None:
    decision = classify(
        builtin,
        "UserErrorRpCollectionLimitReached",
        "The Restore Point collection max limit has reached.",
    )
    assert decision.action == "ticket"
    assert "retry" not in decision.as_dict()


# ------------------------------------------------------------------- (9) workload scope

USER_WORKLOAD_RULES = """\
schema_version: 1
rules:
  - id: our-sql-conflicts
    title: Our DBAs take conflicting SQL operations
    category: support
    action: ticket
    match:
      workloads: [sql]
      codes: [OperationCancelledBecauseConflictingOperationRunningUserError]
    remediation: {en: "Page the DBAs.", ja: "DBA に連絡します。"}
    doc: https://learn.microsoft.com/azure/backup/backup-sql-server-azure-troubleshoot
  - id: our-unscoped-rule
    title: A user rule that names no workload
    category: support
    action: ticket
    match: {text: [{all: [conflicting operation]}]}
    remediation: {en: "Ask around.", ja: "確認します。"}
    doc: https://learn.microsoft.com/azure/backup/backup-azure-vms-troubleshoot
  - id: our-strict-log-rule
    title: Only typed log backups
    category: support
    action: record
    match: {workloads: [sql, hana], operations: [Backup (Log)], codes: [OurOwnCode]}
    remediation: {en: "Nothing to do.", ja: "対応は不要です。"}
    doc: https://learn.microsoft.com/azure/backup/backup-sql-server-azure-troubleshoot
  - id: our-backup-rule
    title: Any backup type
    category: support
    action: record
    match: {workloads: [sql, hana], operations: [backup], codes: [OurOtherCode]}
    remediation: {en: "Nothing to do.", ja: "対応は不要です。"}
    doc: https://learn.microsoft.com/azure/backup/backup-sql-server-azure-troubleshoot
"""
CONFLICT = "OperationCancelledBecauseConflictingOperationRunningUserError"
CONFLICT_TEXT = (
    "Operation canceled as a conflicting operation was already running on the same database."
)


@pytest.fixture
def with_workload_rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "workload-rules.yaml"
    path.write_text(USER_WORKLOAD_RULES, encoding="utf-8")
    return load_rule_set(path)


def test_the_engine_schema_and_model_agree_on_the_workload_names() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    items = schema["$defs"]["match"]["properties"]["workloads"]["items"]
    assert tuple(items["enum"]) == WORKLOADS == ("vm", "sql", "hana", "files")
    from handlers.core import model

    workload = getattr(model, "Workload", None)  # the names the pipeline passes
    if workload is not None:
        assert tuple(workload.ALL) == WORKLOADS


def test_a_rule_without_workloads_is_a_vm_rule(builtin: RuleSet) -> None:
    scoped = {rule.id: rule.workloads for rule in builtin.rules}
    assert scoped["vm-not-found"] == {"vm"}
    assert scoped["storage-account-locked"] == {"vm", "files"}
    default = builtin.classify([400094], "")
    assert default == builtin.classify([400094], "", "", "vm")
    assert default.rule == "vm-not-found"
    for workload in ("sql", "hana", "files"):
        assert builtin.classify([400094], "", "Backup", workload).rule == UNCLASSIFIED


@pytest.mark.parametrize("workload", ["VM", "Sql", "oracle", "", "AzureWorkload"])
def test_an_unknown_workload_is_refused(builtin: RuleSet, workload: str) -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        builtin.classify([400094], "", "Backup", workload)


@pytest.mark.parametrize("workload", WORKLOADS)
def test_unclassified_applies_to_every_workload(builtin: RuleSet, workload: str) -> None:
    decision = builtin.classify(["SomeBrandNewErrorCode"], "Nobody knows this.", "", workload)
    assert (decision.rule, decision.action) == (UNCLASSIFIED, "ticket")
    assert decision.raw_error == {
        "codes": ["SomeBrandNewErrorCode"],
        "message": "Nobody knows this.",
    }


def test_precedence_inside_a_workload(builtin: RuleSet, with_workload_rules: RuleSet) -> None:
    # a code over a text match, inside the SQL scope
    decision = builtin.classify(["UserErrorSQLPODoesNotExist"], "Log chain is broken.", "", "sql")
    assert (decision.rule, decision.matched_by) == ("workload-database-not-found", "code")
    # a user rule scoped to sql beats the built-in rule on SQL jobs only
    user = with_workload_rules.classify([CONFLICT], CONFLICT_TEXT, "Backup (Full)", "sql")
    assert (user.rule, user.user_rule) == ("our-sql-conflicts", True)
    hana = with_workload_rules.classify([CONFLICT], "", "Backup (Full)", "hana")
    assert (hana.rule, hana.user_rule) == ("workload-conflicting-operation", False)
    # a user rule that names no workload is a VM rule: it never sees a SQL or HANA job
    assert with_workload_rules.classify([], CONFLICT_TEXT, "", "vm").rule == "our-unscoped-rule"
    for workload in ("sql", "hana"):
        decision = with_workload_rules.classify([], CONFLICT_TEXT, "", workload)
        assert decision.rule == "workload-conflicting-operation", workload


def test_workload_messages_and_vm_messages_stay_apart(builtin: RuleSet) -> None:
    in_progress = "Another operation is in progress on the selected item."
    assert builtin.classify([], in_progress, "", "vm").rule == "backup-operation-in-progress"
    assert builtin.classify([], in_progress, "", "files").rule == "files-item-locked"
    assert builtin.classify([], in_progress, "", "sql").rule == UNCLASSIFIED
    agent = "guest agent is not available on the target server"
    assert builtin.classify([], agent, "", "vm").rule == "vm-agent-cannot-reach-backup-service"
    assert builtin.classify([], agent, "", "sql").rule == "sql-guest-agent-unavailable"
    assert builtin.classify([], agent, "", "hana").rule == UNCLASSIFIED


# ------------------------------------------------------------------- (10) typed operations


@pytest.mark.parametrize(
    ("operation", "normalized", "keys"),
    [
        ("Backup (Log)", "backup (log)", ("backup (log)", "backup")),
        ("  backup(LOG) ", "backup (log)", ("backup (log)", "backup")),
        ("Restore (Full)", "restore (full)", ("restore (full)", "restore")),
        ("Backup", "backup", ("backup",)),
        ("CrossRegionRestore", "crossregionrestore", ("crossregionrestore",)),
        ("", "", ()),
    ],
)
def test_operations_are_compared_with_and_without_their_type(
    operation: str, normalized: str, keys: tuple[str, ...]
) -> None:
    assert normalize_operation(operation) == normalized
    assert operation_keys(operation) == keys


@pytest.mark.parametrize(
    ("operation", "untyped", "typed"),
    [
        ("Backup (Log)", True, True),
        ("backup (log)", True, True),
        ("Backup (Full)", True, False),
        ("Backup (Differential)", True, False),
        ("Backup", True, False),  # a rule naming the type is stricter: an untyped job misses it
        ("", True, True),  # unknown: every rule applies
        ("Restore (Log)", False, False),
        ("ConfigureBackup", False, False),
    ],
)
def test_a_rule_scoped_to_backup_takes_every_backup_type(
    with_workload_rules: RuleSet, operation: str, untyped: bool, typed: bool
) -> None:
    rules = {rule.id: rule for rule in with_workload_rules.rules}
    assert rules["our-backup-rule"].applies_to(operation) is untyped
    assert rules["our-strict-log-rule"].applies_to(operation) is typed
    found = with_workload_rules.classify(["OurOwnCode"], "", operation, "sql").rule
    assert (found == "our-strict-log-rule") is typed


def test_restore_rules_take_typed_restore_operations(builtin: RuleSet) -> None:
    code = "UserErrorCannotRestoreExistingDBWithoutForceOverwrite"
    for operation in ("Restore", "Restore (Full)", "Restore (Log)", "CrossRegionRestore", ""):
        decision = builtin.classify([code], "", operation, "sql")
        assert decision.rule == "workload-restore-target-database-exists", operation
    assert builtin.classify([code], "", "Backup (Full)", "sql").rule == UNCLASSIFIED


@pytest.mark.parametrize(
    ("operation", "rule", "action"),
    [
        ("Backup (Log)", "hana-log-backup-cancelled-extension-upgrade", "await_healing"),
        ("Backup (Full)", "hana-backup-cancelled-extension-upgrade", "retry"),
        ("Backup (Differential)", "hana-backup-cancelled-extension-upgrade", "retry"),
        ("Backup (Incremental)", "hana-backup-cancelled-extension-upgrade", "retry"),
        ("", "hana-log-backup-cancelled-extension-upgrade", "await_healing"),
        ("Restore (Full)", UNCLASSIFIED, "ticket"),  # a restore is never retried as a backup
    ],
)
def test_an_extension_upgrade_is_healed_for_log_backups_and_retried_for_the_rest(
    builtin: RuleSet, operation: str, rule: str, action: str
) -> None:
    decision = builtin.classify(["JobCancelledOnExtensionUpgrade"], "", operation, "hana")
    assert (decision.rule, decision.action) == (rule, action)


# ------------------------------------------------------------------- (11) numeric + string codes


@pytest.mark.parametrize("workload", ["sql", "hana"])
def test_a_workload_job_passes_its_numeric_code_and_its_code_name(
    builtin: RuleSet, workload: str
) -> None:
    # errorCode 510008 and errorTitle, as in Microsoft's failed SQL job example
    both = builtin.classify([510008, CONFLICT], CONFLICT_TEXT, "Backup (Full)", workload)
    assert (both.rule, both.matched_by, both.action) == (
        "workload-conflicting-operation",
        "code+text",
        "retry",
    )
    assert builtin.classify([510008], "", "Backup (Full)", workload).rule == both.rule
    assert builtin.classify(["510008"], "", "Backup (Full)", workload).rule == both.rule
    assert builtin.classify([CONFLICT.lower()], "", "", workload).rule == both.rule
    # an unknown number next to a known name: the name decides
    gone = builtin.classify([999999, "UserErrorSQLPODoesNotExist"], "", "Backup (Full)", workload)
    assert (gone.rule, gone.action) == ("workload-database-not-found", "ticket")
    # a VM number means nothing on a workload job, and 510008 nothing on a VM job
    assert builtin.classify([400094], "", "Backup (Full)", workload).rule == UNCLASSIFIED
    assert builtin.classify([510008], "", "Backup", "vm").rule == UNCLASSIFIED


def test_a_code_quoted_in_a_workload_message_counts_in_that_workload_only(
    builtin: RuleSet,
) -> None:
    message = "Backup of hxe [hxehost] failed: UserErrorHANAPODoesNotExist"
    assert builtin.classify([], message, "Backup (Full)", "hana").matched_by == "code"
    assert builtin.classify([], message, "Backup", "vm").rule == UNCLASSIFIED


def test_a_user_rule_with_an_unknown_workload_is_refused(tmp_path: Path) -> None:
    path = _rule_file(
        tmp_path,
        "bad-workload.yaml",
        _broken("oracle-rule", match="{workloads: [oracle], codes: [X1]}"),
    )
    with pytest.raises(RuleFileError) as error:
        load_rules(path)
    assert "'oracle-rule'" in str(error.value) and "oracle" in str(error.value)


# ------------------------------------------------------------------- (12) workload actions


@pytest.mark.parametrize(
    ("code", "workload", "operation"),
    [
        ("UserErrorSQLLSNValidationFailure", "sql", "Backup (Log)"),
        ("UserErrorParentFullBackupMissing", "sql", "Backup (Log)"),
        ("UserErrorHANALSNValidationFailure", "hana", "Backup (Log)"),
        ("OperationCancelledBecauseConflictingAutohealOperationRunningUserError", "hana", ""),
        ("UserErrorBackupFailedAsRemedialBackupInProgress", "hana", "Backup (Log)"),
        ("JobCancelledOnExtensionUpgrade", "hana", "Backup (Log)"),
        ("CloudDosAbsoluteLimitReachedWithRetry", "sql", ""),
        ("CloudDosAbsoluteLimitReachedWithRetry", "hana", ""),
        ("DatamoverInsufficientVaultStorage", "files", "Backup"),
    ],
)
def test_what_the_service_heals_itself_awaits_healing(
    builtin: RuleSet, code: str, workload: str, operation: str
) -> None:
    decision = builtin.classify([code], "", operation, workload)
    assert decision.action == "await_healing", decision
    assert decision.params == {"hours": 24}
    assert decision.as_dict()["await_healing"] == {"hours": 24}


def test_the_daily_limit_is_retried_a_day_later(builtin: RuleSet) -> None:
    decision = builtin.classify(["CloudDosAbsoluteLimitReached"], "", "Backup (Full)", "sql")
    assert decision.action == "retry"
    assert decision.params == {"delay_minutes": 1440, "max_attempts": 1}


@pytest.mark.parametrize(
    ("code", "workload"),
    [("UserErrorSQLPODoesNotExist", "sql"), ("UserErrorHANAPODoesNotExist", "hana")],
)
def test_a_dropped_database_is_a_ticket(builtin: RuleSet, code: str, workload: str) -> None:
    decision = builtin.classify([code], "", "Backup (Full)", workload)
    assert (decision.rule, decision.action) == ("workload-database-not-found", "ticket")


@pytest.mark.parametrize(
    "code",
    [
        "FileShareNotFound",
        "UserErrorBackupAFSInDeleteState",
        "UserErrorStorageAccountNotFound",
        "UserErrorFileShareEndpointUnreachable",
    ],
)
def test_a_deleted_share_or_account_stops_protection(builtin: RuleSet, code: str) -> None:
    decision = builtin.classify([code], "", "Backup", "files")
    assert decision.action == "stop_protection"


def test_a_soft_deleted_share_is_an_urgent_ticket_that_says_undelete(builtin: RuleSet) -> None:
    soft = builtin.classify(["UserErrorBackupAFSInSoftDeleteState"], "", "Backup", "files")
    assert soft.action == "ticket"
    for decision in (soft, builtin.classify(["FileShareNotFound"], "", "Backup", "files")):
        text = decision.remediation.casefold()
        assert "undelete" in text and "retention" in text, decision.rule
        assert "元に戻" in decision.remediation_ja and "保持期間" in decision.remediation_ja


@pytest.mark.parametrize(
    ("code", "workload"),
    [
        ("UserErrorJobCancelledOnMachineReboot", "vm"),
        ("AutoProtectionCancelledOrNotValid", "sql"),
        ("BMSUserErrorConflictingProtectionOperation", "files"),
    ],
)
def test_cancellation_and_notices_are_recorded(builtin: RuleSet, code: str, workload: str) -> None:
    assert builtin.classify([code], "", "", workload).action == "record"


def test_a_catalogue_slip_is_judged_by_the_code(builtin: RuleSet) -> None:
    slip = "Extension installation/operation failed due to a COM+ error."
    decision = builtin.classify(["ExtensionFailedOutOfMemoryError"], slip)
    assert (decision.rule, decision.matched_by) == ("extension-out-of-memory", "code")
    assert builtin.classify([], slip).rule != "extension-out-of-memory"


# ------------------------------------------------------------------- (13) every reference code

# Code names of workloads.md sections 3.1 (SQL), 3.2 (HANA and HANA snapshot) and 3.3 (Azure
# Files) and of error-codes-catalogue.md (Azure VM). The tests read them from
# ../shared/reference/ when it is there (CI clones the repo beside shared/); otherwise they use
# the copy below, taken from those files (workloads.md as of its 2026 revision; the catalogue's
# snapshot of 2021-04-09). test_the_copied_code_lists_match_the_reference keeps the copy honest.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
WORKLOAD_SECTIONS = {"sql": "### 3.1", "hana": "### 3.2", "files": "### 3.3"}


def _names(block: str) -> tuple[str, ...]:
    """Comma-separated names (a name may hold a space, as ``File Sync PreRestoreFailed``)."""
    return tuple(name.strip() for name in block.split(",") if name.strip())


COPIED_CODES: dict[str, tuple[str, ...]] = {
    "sql": _names(
        """
    AutoProtectionCancelledOrNotValid, CloudDosAbsoluteLimitReached,
    CloudDosAbsoluteLimitReachedWithRetry, FabricSvcBackupPreferenceCheckFailedUserError,
    GuestAgentStatusUnavailableUserError,
    OperationCancelledBecauseConflictingOperationRunningUserError,
    UserErrorBackupFailedAsTransactionLogIsFull,
    UserErrorCannotFindServerCertificateWithThumbprint,
    UserErrorCannotRestoreExistingDBWithoutForceOverwrite,
    UserErrorFileManipulationIsNotAllowedDuringBackup, UserErrorOpeningSQLConnection,
    UserErrorOperationNotAllowedDatabaseMirroringEnabled, UserErrorParentFullBackupMissing,
    UserErrorRestoreFailedDatabaseCannotBeOfflined,
    UserErrorRestoreNotPossibleBecauseLogBackupContainsBulkLoggedChanges,
    UserErrorSQLLSNValidationFailure, UserErrorSQLNoSysadminMembership,
    UserErrorSQLPODoesNotExist, UserErrorSQLPODoesNotSupportBackupType,
    UserErrorVMInternetConnectivityIssue, UserErrorWindowsWLExtFailedToStartPluginService,
    UserErrorWorkloadExtensionNotInstalled, VMNotInRunningStateUserError,
    WlExtGenericIOFaultUserError, WorkloadExtensionDidntDequeueMsg,
    WorkloadExtensionNotPresent, WorkloadExtensionNotReachable
"""
    ),
    "hana": _names(
        """
    CloudDosAbsoluteLimitReached, CloudDosAbsoluteLimitReachedWithRetry,
    JobCancelledOnExtensionUpgrade,
    OperationCancelledBecauseConflictingAutohealOperationRunningUserError,
    OperationCancelledBecauseConflictingOperationRunningUserError,
    UserErrorBackupFailedAsRemedialBackupInProgress,
    UserErrorCannotConnectToAzureActiveDirectoryService,
    UserErrorConflictingFileSystemPresentOnTargetMachine, UserErrorDBNameNotInCorrectFormat,
    UserErrorDatabaseUserPasswordExpired, UserErrorDefaultSidAdmDirectoryChanged,
    UserErrorDeleteSnapshotRoleOrResourceGroupMissing, UserErrorDiskAttachLimitReached,
    UserErrorDiskTypeNotSupportedForWkloadBackup, UserErrorHANAInternalRoleNotPresent,
    UserErrorHANALSNValidationFailure, UserErrorHANAPODoesNotExist,
    UserErrorHDBsettingsScriptNotFound, UserErrorHanaInstanceNameInvalid,
    UserErrorHanaPreScriptNotRun, UserErrorHanaSQLQueryFailed,
    UserErrorHanaUnsupportedOperation, UserErrorInOpeningHanaOdbcConnection,
    UserErrorIncompatibleSrcTargetSystemsForRestore, UserErrorInconsistentSSFS,
    UserErrorInsufficientPrivilegeOfDatabaseUser,
    UserErrorInsufficientSpaceOnSystemDriveForExtensionMetadata, UserErrorInvalidBackint,
    UserErrorInvalidBackintConfiguration, UserErrorMaxDisksSupportedForWkloadBackupExceeded,
    UserErrorMisConfiguredSslCaStore, UserErrorPITSnapshotDeleted,
    UserErrorPreregistrationScriptNotRun, UserErrorRecoverySysScriptFailedToTriggerRestore,
    UserErrorRestoreDiskIncompatible, UserErrorRestoreTargetDirectoriesAbsent,
    UserErrorSDCtoMDCUpgradeDetected,
    UserErrorSnapshotOperationsUnsupportedWithInactiveDatabase,
    UserErrorSnapshotTargetRGNotFoundOrVMIdentityRequiresPermissions,
    UserErrorTargetPOExistsOverwriteNotSpecified, UserErrorVMIdentityNotEnabled,
    UserErrorVMIdentityRequiresCreateDisksRole, UserErrorVMIdentityRequiresCreateSnapshotsRole,
    UserErrorVMIdentityRequiresGetDiskSASRole,
    UserErrorVMIdentityRequiresPermissionsForSnapshot,
    UserErrorVMIdentityRequiresReadDisksRole, UserErrorVMIdentityRequiresReadSnapshotsRole,
    UserErrorVMIdentityRequiresReadVMRole, UserErrorVMIdentityRequiresUpdateVMRole,
    UserErrorWLBackupDeviceTypeNotSupported, UserErrorWLBackupFilesystemTypeNotSupported,
    UserErrorWLOnOSVolumeNotSupported, UserErrorWorkloadExtensionNotInstalled,
    WorkloadExtensionDidntDequeueMsg, WorkloadExtensionNotPresent,
    WorkloadExtensionNotReachable
"""
    ),
    "files": _names(
        """
    AFSMaxSnapshotReached, AzureFileSyncChangeDetectionInProgress, AzureOperationFailed,
    BMSUserErrorConflictingProtectionOperation, BMSUserErrorObjectLocked,
    DataTransferServiceAllFilesFailedToRecover, DataTransferServiceCoFLimitReached,
    DataTransferServiceSourceUriNotValid, DatamoverGenericError,
    DatamoverInsufficientVaultStorage, File Sync PreRestoreFailed, FileShareNotFound,
    FileshareBackupFailedWithAzureRpRequestThrottling,
    FileshareRestoreFailedWithAzureRpRequestThrottling, ParallelSnapshotRequest,
    TargetFileShareNotFound, UserErrorAFSRecoverySomeFilesNotRestored,
    UserErrorAFSSourceSnapshotNotFound, UserErrorAnotherRestoreInProgressOnSameTarget,
    UserErrorBackupAFSInDeleteState, UserErrorBackupAFSInSoftDeleteState,
    UserErrorDTSDestLocked, UserErrorDTSSourceUriNotValid, UserErrorDTSStorageAccountNotFound,
    UserErrorFileShareEndpointUnreachable, UserErrorResourceGroupNotFound,
    UserErrorRestoreAFSInDeleteState, UserErrorRestoreAFSInSoftDeleteState,
    UserErrorSourceOrTargetAccountNotAccessible,
    UserErrorStorageAccountInternetRoutingNotSupported, UserErrorStorageAccountIsLocked,
    UserErrorStorageAccountNotFound, UserErrorStorageKeyBasedAuthenticationNotPermitted,
    UserErrorTargetFileShareFull, UserErrorTargetFileShareQuotaNotSufficient
"""
    ),
    "vm": _names(
        """
    ExtensionCommandExecFailure, ExtensionFailedOutOfMemoryError, ExtensionInstallationFailure,
    ExtensionOperationInProgress, GuestAgentCertificateNotFound,
    GuestAgentPluginInstallCommandProcessingFailed, GuestAgentStatusUnavailableUserError,
    ManagedRPCreationFailedInCrpButExtensionSucceeded, NoExtensionStatusButStatusBlobAvailable,
    OlrBackupFailed, UserErrorBCMRestoreStorageAccountNotFound,
    UserErrorBCMUnsupportedDiskCount, UserErrorComputeVmWithClassicStorage,
    UserErrorCoreCountSubscriptionQuotaReached, UserErrorFsFreezeTimeout,
    UserErrorGuestAgentVersionUnsupported, UserErrorHostedServiceSubscriptionQuotaReached,
    UserErrorInvalidAuthenticationTokenTenant, UserErrorInvalidManagedDiskOperation,
    UserErrorInvalidNetworkConfigV1, UserErrorInvalidVMEncryptionInfo,
    UserErrorJobCancelledOnMachineReboot, UserErrorNetworkAclSANotSupported,
    UserErrorProtectionQuotaExceeded, UserErrorRestoreDestinationBlobNotFound,
    UserErrorRestoreOperationInProgress, UserErrorRpCollectionDeleted,
    UserErrorRpCollectionMarkedForDeletion, UserErrorSkuNotAvaialable,
    UserErrorStorageAccountIsLocked, UserErrorUnSupportedDistribution,
    UserErrorUnsupportedDiskConfiguration, UserErrorUnsupportedStorageType,
    UserErrorVmAlreadyExistWithSameName, VMBackupLinuxExtensionConfFileWrongEncodingFormat,
    extensioninstallprovidercommemoryquotareached, usererrorolrnotsupported,
    usererrorolrnotsupportedonrpwithdisksexcluded, usererrorstandardssdnotsupported
"""
    ),
}
_BACKTICKED_CODE = re.compile(r"`([A-Za-z][A-Za-z0-9]+(?: [A-Za-z0-9]+)*)`")


def _parsed_codes() -> dict[str, set[str]] | None:
    """The code names of the two reference files, or None when they are not beside the repo."""
    workloads, catalogue = REFERENCE / "workloads.md", REFERENCE / "error-codes-catalogue.md"
    if not (workloads.is_file() and catalogue.is_file()):
        return None
    text = workloads.read_text(encoding="utf-8")
    ends = [*WORKLOAD_SECTIONS.values(), "### 3.4"]
    codes = {
        workload: set(_BACKTICKED_CODE.findall(text[text.index(start) : text.index(end)]))
        for (workload, start), end in zip(WORKLOAD_SECTIONS.items(), ends[1:], strict=True)
    }
    codes["vm"] = set(_BACKTICKED_CODE.findall(catalogue.read_text(encoding="utf-8")))
    return codes


PARSED_CODES = _parsed_codes()
REFERENCE_CODES = PARSED_CODES or {w: set(codes) for w, codes in COPIED_CODES.items()}
REFERENCE_CASES = [
    (w, code) for w, codes in sorted(REFERENCE_CODES.items()) for code in sorted(codes)
]


def test_the_copied_code_lists_match_the_reference() -> None:
    if PARSED_CODES is None:
        pytest.skip(f"no reference files in {REFERENCE}")
    assert {w: set(codes) for w, codes in COPIED_CODES.items()} == PARSED_CODES
    assert {w: len(codes) for w, codes in PARSED_CODES.items()} == {
        "sql": 27,
        "hana": 56,  # 34 streaming, 21 snapshot, 1 from the Japanese page
        "files": 35,  # 34, and one code's other spelling in its heading
        "vm": 39,  # 38, and the catalogue's misspelt UserErrorSkuNotAvaialable
    }


@pytest.mark.parametrize(
    ("workload", "code"), REFERENCE_CASES, ids=[f"{w}-{c}" for w, c in REFERENCE_CASES]
)
def test_every_reference_code_has_a_rule(builtin: RuleSet, workload: str, code: str) -> None:
    decision = builtin.classify([code], "", "", workload)
    assert decision.rule != UNCLASSIFIED
    assert decision.matched_by == "code"
    assert workload in next(r for r in builtin.rules if r.id == decision.rule).workloads


@pytest.mark.parametrize(
    ("workload", "code"), REFERENCE_CASES, ids=[f"{w}-{c}" for w, c in REFERENCE_CASES]
)
def test_a_code_lands_only_on_rules_of_its_own_workload(
    builtin: RuleSet, workload: str, code: str
) -> None:
    for other in WORKLOADS:
        decision = builtin.classify([code], "", "", other)
        if decision.rule != UNCLASSIFIED:
            rule = next(r for r in builtin.rules if r.id == decision.rule)
            assert other in rule.workloads
            assert code.replace(" ", "").casefold() in rule.codes, (other, rule.id)


#: Rows whose message says nothing of the code (none given, "SAP HANA error") or belongs to
#: another code (the catalogue's slips): only the code can classify them.
TEXT_SAYS_NOTHING = {
    ("sql", "UserErrorSQLNoSysadminMembership"),
    ("hana", "WorkloadExtensionNotReachable"),  # the HANA page gives no message
    ("hana", "UserErrorInconsistentSSFS"),
    ("vm", "ExtensionFailedOutOfMemoryError"),  # carries ExtensionInstallationFailedCOM's message
    ("vm", "extensioninstallprovidercommemoryquotareached"),  # "extension could not be installed"
}
_TABLE_ROW = re.compile(r"^\| `([^`]+)`[^|]*\| ([^|]+?) \|", re.MULTILINE)


def _documented_messages() -> list[tuple[str, str, str]]:
    """(workload, code, message) of every table row of the two reference files."""
    if PARSED_CODES is None:
        return []
    text = (REFERENCE / "workloads.md").read_text(encoding="utf-8")
    ends = [*WORKLOAD_SECTIONS.values(), "### 3.4"]
    sections = {
        workload: text[text.index(start) : text.index(end)]
        for (workload, start), end in zip(WORKLOAD_SECTIONS.items(), ends[1:], strict=True)
    }
    sections["vm"] = (REFERENCE / "error-codes-catalogue.md").read_text(encoding="utf-8")
    return [
        (workload, code, message)
        for workload, section in sections.items()
        for code, message in _TABLE_ROW.findall(section)
    ]


def test_documented_messages_classify_by_meaning_as_their_codes_do(builtin: RuleSet) -> None:
    rows = _documented_messages()
    if not rows:
        pytest.skip(f"no reference files in {REFERENCE}")
    assert len(rows) > 140  # English and Japanese rows
    for workload, code, message in rows:
        by_code = builtin.classify([code], "", "", workload).rule
        by_text = builtin.classify([], message, "", workload).rule
        says_nothing = (workload, code) in TEXT_SAYS_NOTHING
        assert (by_text == by_code) != says_nothing, (workload, code, message)


@pytest.mark.parametrize("workload", ["sql", "hana", "files"])
def test_no_vm_code_lands_on_a_workload_job(builtin: RuleSet, workload: str) -> None:
    for code in CODE_TO_RULE:
        assert builtin.classify([code], "", "", workload).rule == UNCLASSIFIED, code


def test_the_naive_baseline_agrees_with_the_engine_on_every_case(builtin: RuleSet) -> None:
    from bench.classify import check_agreement, corpus

    cases = corpus()
    assert {c.workload for c in cases} == set(WORKLOADS)
    assert check_agreement(builtin, cases) == []


# ------------------------------------------------------------------- (14) the classify CLI


def _cli(monkeypatch: pytest.MonkeyPatch, *args: str, stdin: str = "") -> tuple[int, str, str]:
    from handlers.cli.main import main

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out, err = io.StringIO(), io.StringIO()
    return main(["classify", *args], out=out, err=err), out.getvalue(), err.getvalue()


def test_classify_cli_takes_a_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _cli(monkeypatch, "--code", "510008", "--workload", "sql")
    answer = json.loads(out)
    assert (code, answer["rule"], answer["workload"]) == (
        0,
        "workload-conflicting-operation",
        "sql",
    )
    assert answer["retry"] == {"delay_minutes": 60, "max_attempts": 2}
    code, out, _ = _cli(monkeypatch, "--code", "510008")
    assert (code, json.loads(out)["rule"], json.loads(out)["workload"]) == (0, UNCLASSIFIED, "vm")
    code, out, err = _cli(monkeypatch, "--code", "510008", "--workload", "oracle")
    assert (code, out) == (2, "") and "--workload" in err


def test_classify_cli_jsonl_lines_carry_their_own_workload(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [
        {"code": "UserErrorHANAPODoesNotExist"},
        {"code": "UserErrorHANAPODoesNotExist", "workload": "hana"},
        {"code": "JobCancelledOnExtensionUpgrade", "workload": "hana", "operation": "Backup (Log)"},
        {"code": "FileShareNotFound", "workload": "files"},
        {"code": "FileShareNotFound", "workload": "nfs"},
        {"code": 400094, "workload": None},
    ]
    stdin = "".join(json.dumps(line) + "\n" for line in lines)
    code, out, _ = _cli(monkeypatch, "--jsonl", "--workload", "sql", stdin=stdin)
    answers = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [(a["rule"], a["workload"]) for a in answers] == [
        ("workload-database-not-found", "sql"),  # --workload is the default of every line
        ("workload-database-not-found", "hana"),
        ("hana-log-backup-cancelled-extension-upgrade", "hana"),
        ("files-share-deleted", "files"),
        (UNCLASSIFIED, "nfs"),
        (UNCLASSIFIED, "sql"),  # a null workload takes the default; 400094 is a VM code
    ]
    assert answers[4]["error"].startswith("unknown workload 'nfs'")
    assert all(a.keys() >= {"rule", "category", "action", "title", "remediation"} for a in answers)
