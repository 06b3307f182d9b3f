"""Errors that tell the platform to deliver again later (the function raises them out)."""

from __future__ import annotations


class RetryLaterError(RuntimeError):
    """This delivery cannot finish now; raised out of the function, the platform redelivers."""


class DeliveryInFlightError(RetryLaterError):
    """Another delivery of the same job holds a live claim.

    By the redelivery the first one has finished (this one is then a duplicate) or its lease
    has run out (this one takes over).
    """


class ContentionError(RetryLaterError):
    """An entity kept changing under us for every attempt of an ETag-guarded update.

    Nothing of this update was written; the redelivery applies it again.
    """
