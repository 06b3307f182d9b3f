"""A fixed bearer token for SDK clients pointed at the simulator."""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken

TOKEN_LIFETIME_SECONDS = 3600


class StaticCredential:
    """A ``TokenCredential`` that always returns the same token, valid for an hour from now.

    :param token: the bearer token to send.
    """

    def __init__(self, token: str = "sim-token") -> None:
        self.token = token

    def get_token(self, *_scopes: str, **_kwargs: Any) -> AccessToken:
        """The token, whatever the scopes and options.

        :return: an :class:`~azure.core.credentials.AccessToken`.
        """
        return AccessToken(self.token, int(time.time()) + TOKEN_LIFETIME_SECONDS)
