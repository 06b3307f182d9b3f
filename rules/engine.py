"""The classifier: error codes and message text in, one :class:`Decision` out.

Matching is on meaning rather than one exact sentence. Text is normalized (Unicode NFKC,
case folded, localisation placeholders such as ``&2;`` dropped, every character that is not a
letter or digit removed), and so are the rule terms, so spacing, case, punctuation and text
around a message do not matter, in English and Japanese alike.

Precedence, highest first:

1. a user rule over a built-in rule;
2. a code match over a text-only match;
3. the most specific match: code and text together, then the longest matched terms;
4. the order of the rule file.

Nothing matched gives the ``unclassified`` decision (action ``ticket``) carrying the raw error.

>>> from rules import default_rule_set
>>> default_rule_set().classify(["400094"], "").rule
'vm-not-found'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

UNCLASSIFIED = "unclassified"

_PLACEHOLDER = re.compile(r"&\d+;")
_NOT_ALNUM = re.compile(r"[\W_]+")
_CODE_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]{7,}")
# Generic ARM error codes: a code, but in free text too common to prove anything.
_TOO_GENERIC_IN_TEXT = frozenset({"resourcenotfound"})


def normalize_text(text: str) -> str:
    """Reduce ``text`` to case-folded letters and digits.

    >>> normalize_text("Copying  VHDs from the\\nBackup vault timed-out!")
    'copyingvhdsfromthebackupvaulttimedout'
    >>> normalize_text("バックアップ資格情報コンテナーと&2; つの")
    'バックアップ資格情報コンテナーとつの'
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_ALNUM.sub("", _PLACEHOLDER.sub("", folded))


def normalize_code(code: object) -> str:
    """Codes compare case-insensitively; numeric codes compare as numbers.

    >>> normalize_code(" 0400094 "), normalize_code(400094), normalize_code("BCMV2VMNotFound")
    ('400094', '400094', 'bcmv2vmnotfound')
    """
    text = str(code).strip().casefold()
    if text.isdigit():
        return str(int(text))
    return text


@dataclass(frozen=True)
class Clause:
    """One text alternative: every ``all`` term, one ``any`` term if given, no ``none`` term.

    Terms are checked longest first: the longest term is the rarest, so most clauses are
    ruled out by a single substring test (this is the classifier's hot loop).
    """

    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    _required: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _required_length: int = field(init=False, repr=False, compare=False)
    #: The longest ``all`` term ("" when there is none): a cheap first test for the caller.
    anchor: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        required = tuple(sorted(self.all, key=len, reverse=True))
        object.__setattr__(self, "_required", required)
        object.__setattr__(self, "_required_length", sum(map(len, self.all)))
        object.__setattr__(self, "anchor", required[0] if required else "")

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
        return not self.operations or not operation or operation.casefold() in self.operations


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
    """Text clauses grouped by anchor term: one substring test rules out a whole group."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._by_anchor: dict[str, list[_Entry]] = {}
        for entry in entries:
            self._by_anchor.setdefault(entry[2].anchor, []).append(entry)
        self._anchorless = self._by_anchor.pop("", [])

    def best(self, text: str, operation: str, best: _Best | None) -> _Best | None:
        """The best of ``best`` and every text match in ``text``."""
        if not text:
            return best
        for anchor, entries in self._by_anchor.items():
            if anchor in text:
                best = self._best_of(entries, text, operation, best)
        return self._best_of(self._anchorless, text, operation, best)

    @staticmethod
    def _best_of(
        entries: list[_Entry], text: str, operation: str, best: _Best | None
    ) -> _Best | None:
        for position, rule, clause in entries:
            score = clause.score(text)
            if not score or not rule.applies_to(operation):
                continue
            rank = (rule.user, 0, 0, score, -position)
            if best is None or rank > best[0]:
                best = (rank, rule, "text")
        return best


class RuleSet:
    """An ordered set of rules with a code index for constant-time code lookups."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self._by_code: dict[str, list[tuple[int, Rule]]] = {}
        for position, rule in enumerate(self.rules):
            for code in rule.codes:
                self._by_code.setdefault(code, []).append((position, rule))
        entries = [
            (position, rule, clause)
            for position, rule in enumerate(self.rules)
            if not rule.require_both
            for clause in rule.clauses
        ]
        self._text = _TextIndex(entries)
        self._user_text = _TextIndex([e for e in entries if e[1].user])

    def __len__(self) -> int:
        return len(self.rules)

    def _codes_in(self, codes: Iterable[object], message: str) -> list[str]:
        found = [normalize_code(c) for c in codes if c is not None and str(c).strip()]
        for token in _CODE_TOKEN.findall(message):
            code = token.casefold()
            if code in self._by_code and code not in _TOO_GENERIC_IN_TEXT:
                found.append(code)
        return found

    def classify(
        self, codes: Iterable[object], message: str | None, operation: str = ""
    ) -> Decision:
        """Classify one failure.

        :param codes: error codes of the job, strings or numbers, in any case.
        :param message: all error text of the job (may be empty).
        :param operation: the job's operation (``Backup``, ``Restore``...), if known.
        """
        message = message or ""
        text = normalize_text(message)
        best = self._best_code(self._codes_in(codes, message), text, operation)
        if best is None or not best[0][1]:
            best = self._text.best(text, operation, best)
        elif not best[1].user:  # only a user rule can beat a built-in code match
            best = self._user_text.best(text, operation, best)
        if best is None:
            return unclassified([str(c) for c in codes if c is not None], message)
        return _decision(best[1], best[2])

    def _best_code(self, code_list: list[str], text: str, operation: str) -> _Best | None:
        best: _Best | None = None
        for code in code_list:
            for position, rule in self._by_code.get(code, ()):
                if not rule.applies_to(operation):
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
