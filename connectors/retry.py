"""The retry policy for idempotent CRM calls (tenacity).

Why here and not in the SDKs: simple-salesforce retries nothing, and hubspot-api-client's urllib3
retry skips POST (search, batch read are POSTs). Only the connector knows which calls are safe to
repeat, so reads and field writes whose values are absolute (setting a field twice to the same value
is harmless) go through :func:`retrying`; nothing else does.

The policy honours the server: ``Retry-After`` when sent, otherwise exponential backoff with jitter;
a bounded number of attempts; quota exhaustion, auth and scope errors are never retried, nor are
an unresolvable host or an untrusted certificate (``connectors.diagnostics.UnreachableError``:
they fail identically on every attempt). The error that ends the retries says it gave up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.errors import TransientError

T = TypeVar("T")

DEFAULT_ATTEMPTS = 5
MAX_WAIT_SECONDS = 60.0


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TransientError) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), MAX_WAIT_SECONDS)
    return float(wait_exponential_jitter(initial=0.5, max=MAX_WAIT_SECONDS)(state))


def retrying(
    fn: Callable[[], T],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[TransientError, float], None] | None = None,
) -> T:
    """Call ``fn`` and retry it on :class:`TransientError`, honouring ``retry_after``."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if on_retry and isinstance(exc, TransientError) and state.next_action:
            on_retry(exc, state.next_action.sleep)

    retryer = Retrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(attempts),
        wait=_wait,
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    try:
        return retryer(fn)
    except TransientError as exc:
        if attempts <= 1:
            raise
        # The reader must know the run gave up (the message alone cannot say: it was written
        # before the retries); same type and retry_after, so callers' handling is unchanged.
        final = TransientError(
            f"{str(exc).rstrip('.')}; gave up after {attempts} attempts",
            crm=exc.crm,
            retry_after=exc.retry_after,
        )
        raise final from None
