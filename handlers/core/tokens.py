"""Approval tokens: what an Approve or Reject link carries instead of a function key.

A token is ``base64url(claims JSON) "." base64url(HMAC-SHA256(secret, claims part))``. Its
claims name the incident, the decision the link makes, the approval request it answers (a
random id: a token of an earlier or later request of the same incident is not this one's) and
when it expires. The signature proves only that we issued it; single use is the incident's
business (the first decision consumes the request, under its ETag).

>>> token = sign(Claims("job-1", "approve", "req-1", 2_000_000_000), b"k" * 32)
>>> read(token, b"k" * 32).incident_id
'job-1'
>>> read(token[:-2] + "AA", b"k" * 32)
Traceback (most recent call last):
...
handlers.core.tokens.TokenError: the signature does not match (forged or altered)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass

APPROVE = "approve"
REJECT = "reject"
DECISIONS = (APPROVE, REJECT)
#: Longer tokens are refused before any work (a link's query string is bounded anyway).
MAX_TOKEN_CHARS = 2_000
#: A token in a link's query string.
_TOKEN_IN_LINK = re.compile(r"([?&]token=)[^&\s\"'<>]+")


def without_tokens(text: str) -> str:
    """``text`` with the tokens of any links in it withheld: a token works like a password
    until its request is decided or expires, so logs and tables never keep one.

    >>> without_tokens("Approve: https://app/api/approvals?token=eyJ.abc")
    'Approve: https://app/api/approvals?token=(withheld)'
    """
    return _TOKEN_IN_LINK.sub(r"\1(withheld)", text)


class TokenError(ValueError):
    """A token that cannot be used; the message says why, ``claims`` what it said (if read).

    :ivar claims: the claims the token carried when they could be read (a forged token's
        claims are not trusted, only reported: it may name a real incident).
    """

    def __init__(self, reason: str, claims: Claims | None = None) -> None:
        super().__init__(reason)
        self.claims = claims


@dataclass(frozen=True)
class Claims:
    """What a token says.

    :ivar incident_id: the incident (its backup job id).
    :ivar decision: ``approve`` or ``reject``.
    :ivar request_id: the approval request it answers.
    :ivar expires: seconds since the epoch (UTC) after which it is refused.
    """

    incident_id: str
    decision: str
    request_id: str
    expires: int


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(body: str, secret: bytes) -> str:
    return _encode(hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest())


def sign(claims: Claims, secret: bytes) -> str:
    """The token carrying ``claims``, signed with ``secret``."""
    body = _encode(json.dumps(asdict(claims), separators=(",", ":")).encode())
    return f"{body}.{_mac(body, secret)}"


def _claims(body: str) -> Claims:
    """The claims of a token's first part.

    :raises TokenError: they are not a JSON object of the four claims.
    """
    try:
        raw = json.loads(_decode(body))
        claims = Claims(**raw) if isinstance(raw, dict) else None
    except (ValueError, TypeError, binascii.Error, RecursionError):
        claims = None
    if (
        claims is None
        or not (isinstance(claims.incident_id, str) and claims.incident_id)
        or not isinstance(claims.request_id, str)
        or isinstance(claims.expires, bool)
        or not isinstance(claims.expires, int)
        or claims.decision not in DECISIONS
    ):
        raise TokenError("not an approval token")
    return claims


def read(token: str, secret: bytes) -> Claims:
    """The claims of a token we signed (expiry is the caller's to check, against its clock).

    :raises TokenError: malformed, or signed with another secret or altered (``claims`` then
        holds what it says, unverified).
    """
    if not secret:
        raise TokenError("approval links are not enabled here (no APPROVAL_SECRET)")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenError("not an approval token")
    body, mac = token.split(".")
    claims = _claims(body)
    if not mac.isascii() or not hmac.compare_digest(_mac(body, secret), mac):
        raise TokenError("the signature does not match (forged or altered)", claims)
    return claims
