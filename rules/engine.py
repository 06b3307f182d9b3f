"""The classifier: error codes and message text in, one :class:`Decision` out.

Matching is on meaning rather than one exact sentence. Text is normalized (Unicode NFKC,
case folded, localisation placeholders such as ``&2;`` dropped, every character that is not a
letter or digit removed), and so are the rule terms, so spacing, case, punctuation and text
around a message do not matter, in English and Japanese alike.

Every rule has a workload scope (``vm``, ``sql``, ``hana``, ``files``; ``vm`` when the rule
names none): only the rules of the failed job's workload compete, so a workload's code never
lands on a VM rule (or the reverse), even where the two messages read alike.

Precedence, highest first:

1. a user rule over a built-in rule;
2. a code match over a text-only match;
3. the most specific match: code and text together, then the longest matched terms;
4. the order of the rule file.

Nothing matched gives the ``unclassified`` decision (action ``ticket``) carrying the raw error.

>>> from rules import default_rule_set
>>> default_rule_set().classify(["400094"], "").rule
'vm-not-found'
>>> default_rule_set().classify([510008], "", "Backup (Log)", workload="sql").action
'retry'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

UNCLASSIFIED = "unclassified"
#: The workloads a rule may be scoped to (the values of ``handlers.core.model.Workload``).
WORKLOADS = ("vm", "sql", "hana", "files")
#: The scope of a rule that names no workload: Azure VM backups only.
DEFAULT_WORKLOADS = frozenset({"vm"})

_PLACEHOLDER = re.compile(r"&\d+;")
_NOT_ALNUM = re.compile(r"[\W_]+")
_ASCII_NOT_ALNUM = bytes(b for b in range(128) if not chr(b).isalnum())
_CODE_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]{7,}")
_TYPED_OPERATION = re.compile(r"(.*?) ?\( ?(.*?) ?\)")
# Generic ARM error codes: a code, but in free text too common to prove anything.
_TOO_GENERIC_IN_TEXT = frozenset({"resourcenotfound"})


def normalize_text(text: str) -> str:
    """Reduce ``text`` to case-folded letters and digits.

    >>> normalize_text("Copying  VHDs from the\\nBackup vault timed-out!")
    'copyingvhdsfromthebackupvaulttimedout'
    >>> normalize_text("バックアップ資格情報コンテナーと&2; つの")
    'バックアップ資格情報コンテナーとつの'
    """
    if text.isascii():  # the common case, done in C: NFKC changes nothing, casefold is lower
        folded = text.lower()
        if "&" in folded:
            folded = _PLACEHOLDER.sub("", folded)
        return folded.encode("ascii").translate(None, _ASCII_NOT_ALNUM).decode("ascii")
    folded = unicodedata.normalize("NFKC", text).casefold()
    if "&" in folded:
        folded = _PLACEHOLDER.sub("", folded)
    return _NOT_ALNUM.sub("", folded)


def normalize_code(code: object) -> str:
    """Codes compare case-insensitively and without spaces; numeric codes compare as numbers.

    >>> normalize_code(" 0400094 "), normalize_code(400094), normalize_code("BCMV2VMNotFound")
    ('400094', '400094', 'bcmv2vmnotfound')
    >>> normalize_code("File Sync PreRestoreFailed")
    'filesyncprerestorefailed'
    """
    text = "".join(str(code).split()).casefold()
    if text.isdigit():
        return str(int(text))
    return text


def normalize_operation(operation: str) -> str:
    """A job operation as rules compare it: case folded, spaces collapsed, ``name (type)``.

    >>> normalize_operation("  Backup(LOG) "), normalize_operation("CrossRegionRestore")
    ('backup (log)', 'crossregionrestore')
    """
    text = " ".join(operation.split()).casefold()
    typed = _TYPED_OPERATION.fullmatch(text)
    if typed is None or not typed[1]:
        return text
    return f"{typed[1]} ({typed[2]})" if typed[2] else typed[1]


@lru_cache(maxsize=512)
def operation_keys(operation: str) -> tuple[str, ...]:
    """The names a rule's ``operations`` may give this job operation: as typed, then untyped.

    Workload jobs carry their backup type (``Backup (Log)``): a rule scoped to ``Backup``
    takes every type, a rule naming ``Backup (Log)`` only that one. Empty means unknown.

    >>> operation_keys("Backup (Log)"), operation_keys("Restore"), operation_keys("")
    (('backup (log)', 'backup'), ('restore',), ())
    """
    name = normalize_operation(operation)
    base = name.split(" (", 1)[0]
    return (name, base) if base != name else ((name,) if name else ())


@dataclass(frozen=True)
class Clause:
    """One text alternative: every ``all`` term, one ``any`` term if given, no ``none`` term.

    Terms are checked longest first: the longest term is the rarest, so most clauses are
    ruled out by a single substring test (this is the classifier's hot loop). A clause without
    ``all`` terms needs one of its ``any`` terms: those are its anchors.
    """

    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _required_length: int = field(init=False, repr=False, compare=False)
    #: Terms of which the text must hold at least one (the longest ``all`` term, else every
    #: ``any`` term): a cheap first test for the caller.
    anchors: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        required = tuple(sorted(self.all, key=len, reverse=True))
        object.__setattr__(self, "_required", required)
        object.__setattr__(self, "_required_length", sum(map(len, self.all)))
        object.__setattr__(self, "anchors", required[:1] or tuple(self.any))

    def score(self, text: str) -> int:
        """Total length of the matched terms (its specificity), or 0 when it does not match."""
        for term in self._required:
            if term not in text:
                return 0
        longest_any = 0
        if self.any:
            for term in self.any:
                if term in text and len(term) > longest_any:
                    longest_any = len(term)
            if not longest_any:
                return 0
        for term in self.none:
            if term in text:
                return 0
        return self._required_length + longest_any


@dataclass(frozen=True)
class Rule:
    """A validated rule with its terms and codes already normalized."""

    id: str
    title: str
    category: str
    action: str
    remediation_en: str
    remediation_ja: str
    doc: str
    codes: frozenset[str] = frozenset()
    clauses: tuple[Clause, ...] = ()
    operations: frozenset[str] = frozenset()
    #: The workloads whose jobs this rule classifies (``vm`` unless the rule names others).
    workloads: frozenset[str] = DEFAULT_WORKLOADS
    require_both: bool = False
    defers_to_text: bool = False
    #: The action's parameters, as the rule gives them (e.g. a retry's delay and attempts).
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    rows: tuple[str, ...] = ()
    user: bool = False

    def text_score(self, text: str) -> int:
        best = 0
        for clause in self.clauses:
            score = clause.score(text)
            best = max(best, score)
        return best

    def applies_to(self, operation: str) -> bool:
        """Whether the rule's ``operations`` admit this job operation (an empty one: always)."""
        return self.admits(operation_keys(operation))

    def admits(self, keys: tuple[str, ...]) -> bool:
        """:meth:`applies_to` for an operation already reduced by :func:`operation_keys`."""
        return not self.operations or not keys or not self.operations.isdisjoint(keys)


@dataclass(frozen=True)
class Decision:
    """What the rule set decided about one failure.

    :ivar matched_by: ``code``, ``text``, ``code+text`` or ``none``.
    """

    rule: str
    title: str
    category: str
    action: str
    remediation: str
    remediation_ja: str
    doc: str
    matched_by: str
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    user_rule: bool = False
    raw_error: dict[str, object] = field(default_factory=dict)

    def remediation_in(self, language: str) -> str:
        return self.remediation_ja if language == "ja" else self.remediation

    def as_dict(self) -> dict[str, object]:
        """The classify CLI's output object (a stable contract: keys are only ever added)."""
        out: dict[str, object] = {
            "rule": self.rule,
            "category": self.category,
            "action": self.action,
            "title": self.title,
            "remediation": self.remediation,
            "remediation_ja": self.remediation_ja,
            "doc": self.doc,
            "matched_by": self.matched_by,
            "user_rule": self.user_rule,
        }
        if self.params:  # under the action's name, as the rule file gives them
            out[self.action] = dict(self.params)
        if self.raw_error:
            out["raw_error"] = self.raw_error
        return out


def _decision(rule: Rule, matched_by: str) -> Decision:
    return Decision(
        rule=rule.id,
        title=rule.title,
        category=rule.category,
        action=rule.action,
        remediation=rule.remediation_en,
        remediation_ja=rule.remediation_ja,
        doc=rule.doc,
        matched_by=matched_by,
        params=rule.params,
        user_rule=rule.user,
    )


UNCLASSIFIED_REMEDIATION_EN = (
    "No rule recognises this error. Read the job's error details in the vault (Backup jobs, "
    "then the failed job), follow Microsoft's troubleshooting guide for the code shown, and "
    "consider adding a rule for it so the next occurrence is handled automatically."
)
UNCLASSIFIED_REMEDIATION_JA = (
    "このエラーに一致するルールがありません。コンテナーのバックアップ ジョブから失敗したジョブの"
    "エラー詳細を確認し、表示されたコードについて Microsoft のトラブルシューティング ガイドに"
    "従ってください。次回から自動で処理できるよう、このエラーのルールを追加することを検討してください。"
)
TROUBLESHOOTING_DOC = "https://learn.microsoft.com/azure/backup/backup-azure-vms-troubleshoot"


def unclassified(codes: Sequence[str], message: str) -> Decision:
    """The decision for an error no rule knows: a ticket carrying the raw error."""
    return Decision(
        rule=UNCLASSIFIED,
        title="Unrecognised backup error",
        category=UNCLASSIFIED,
        action="ticket",
        remediation=UNCLASSIFIED_REMEDIATION_EN,
        remediation_ja=UNCLASSIFIED_REMEDIATION_JA,
        doc=TROUBLESHOOTING_DOC,
        matched_by="none",
        raw_error={"codes": list(codes), "message": message},
    )


_Best = tuple[tuple[int, ...], Rule, str]
_Entry = tuple[int, Rule, Clause]


class _TextIndex:
    """Text clauses grouped by anchor term: one substring test rules out a whole group.

    Anchors are bucketed by their rarest character (the one fewest anchors share), so one
    character test rules out a whole bucket; a text of ASCII letters and digits (English, once
    normalized) skips the buckets of Japanese characters altogether.
    """

    def __init__(self, entries: list[_Entry]) -> None:
        by_anchor: dict[str, list[_Entry]] = {}
        for entry in entries:
            for anchor in entry[2].anchors:
                by_anchor.setdefault(anchor, []).append(entry)
        shared = Counter(ch for anchor in by_anchor for ch in anchor)
        buckets: dict[str, list[tuple[str, list[_Entry]]]] = {}
        for anchor, group in by_anchor.items():
            rarest = min(anchor, key=lambda ch: (shared[ch], ch))
            buckets.setdefault(rarest, []).append((anchor, group))
        self._every = list(buckets.items())
        self._ascii = [bucket for bucket in self._every if bucket[0].isascii()]

    def best(self, text: str, keys: tuple[str, ...], best: _Best | None) -> _Best | None:
        """The best of ``best`` and every text match in ``text`` (``keys``: the operation)."""
        if not text:
            return best
        buckets = self._ascii if text.isascii() else self._every
        present = [
            group
            for rarest, anchors in buckets
            if rarest in text
            for anchor, group in anchors
            if anchor in text
        ]
        for entries in present:
            for position, rule, clause in entries:
                score = clause.score(text)
                if not score or not rule.admits(keys):
                    continue
                rank = (rule.user, 0, 0, score, -position)
                if best is None or rank > best[0]:
                    best = (rank, rule, "text")
        return best


class _Scope:
    """The rules of one workload, indexed: codes in a dict, text clauses by anchor term."""

    def __init__(self, rules: Sequence[tuple[int, Rule]]) -> None:
        self.by_code: dict[str, list[tuple[int, Rule]]] = {}
        for position, rule in rules:
            for code in rule.codes:
                self.by_code.setdefault(code, []).append((position, rule))
        entries = [
            (position, rule, clause)
            for position, rule in rules
            if not rule.require_both
            for clause in rule.clauses
        ]
        self.text = _TextIndex(entries)
        self.user_text = _TextIndex([e for e in entries if e[1].user])

    def codes_in(self, codes: Iterable[object], message: str) -> list[str]:
        """The job's codes, and the codes of this workload's rules that its message quotes."""
        found = [code for code in (normalize_code(c) for c in codes if c is not None) if code]
        for token in _CODE_TOKEN.findall(message):
            code = token.casefold()
            if code in self.by_code and code not in _TOO_GENERIC_IN_TEXT:
                found.append(code)
        return found

    def best_code(self, code_list: list[str], text: str, keys: tuple[str, ...]) -> _Best | None:
        """The best code match (a code's rule also scores its text, for specificity)."""
        best: _Best | None = None
        for code in code_list:
            for position, rule in self.by_code.get(code, ()):
                if not rule.admits(keys):
                    continue
                score = rule.text_score(text) if text else 0
                if rule.require_both and not score:
                    continue
                # A code that only says "see the details" ranks with text matches, below any.
                firm = 0 if rule.defers_to_text else 1
                rank = (rule.user, firm, 1 if score else 0, score if firm else 0, -position)
                if best is None or rank > best[0]:
                    best = (rank, rule, "code+text" if score else "code")
        return best


class RuleSet:
    """An ordered set of rules, indexed per workload for constant-time code lookups."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        for rule in self.rules:
            if not rule.workloads or not rule.workloads <= set(WORKLOADS):
                raise ValueError(f"rule {rule.id!r}: workloads must be among {WORKLOADS}")
        numbered = list(enumerate(self.rules))
        self._scopes = {
            workload: _Scope([(p, rule) for p, rule in numbered if workload in rule.workloads])
            for workload in WORKLOADS
        }
        # One decision object per (rule position, matched_by): decisions are immutable.
        self._decisions: dict[tuple[int, str], Decision] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def classify(
        self,
        codes: Iterable[object],
        message: str | None,
        operation: str = "",
        workload: str = "vm",
    ) -> Decision:
        """Classify one failure.

        :param codes: error codes of the job, strings or numbers, in any case (a workload
            job's numeric ``errorCode`` and its code name from ``errorTitle`` together).
        :param message: all error text of the job (may be empty).
        :param operation: the job's operation (``Backup``, ``Backup (Log)``, ``Restore``...),
            if known.
        :param workload: ``vm``, ``sql``, ``hana`` or ``files``: only the rules scoped to it
            compete.
        :raises ValueError: an unknown workload.
        """
        scope = self._scopes.get(workload)
        if scope is None:
            raise ValueError(f"unknown workload {workload!r}: expected one of {WORKLOADS}")
        message = message or ""
        text = normalize_text(message)
        keys = operation_keys(operation or "")
        best = scope.best_code(scope.codes_in(codes, message), text, keys)
        if best is None or not best[0][1]:
            best = scope.text.best(text, keys, best)
        elif not best[1].user:  # only a user rule can beat a built-in code match
            best = scope.user_text.best(text, keys, best)
        if best is None:
            return unclassified([str(c) for c in codes if c is not None], message)
        return self._decided(best)

    def _decided(self, best: _Best) -> Decision:
        """The decision for the winning rule and how it matched, made once and then reused."""
        key = (-best[0][-1], best[2])
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._decisions[key] = _decision(best[1], best[2])
        return decision
