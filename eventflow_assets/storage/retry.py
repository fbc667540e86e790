"""Transient PostgreSQL faults retried with bounded backoff, so a restart or failover of the
database does not stop the stream.

Safe only around work that is one transaction and idempotent across attempts, as the sinks'
exactly-once write is: a failed attempt rolled back, and an attempt whose commit went through
unacknowledged is recognised by its ledger row on the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import psycopg
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from eventflow_assets.errors import EventFlowError, first_line
from eventflow_assets.storage.postgres import PostgresUnreachable

log = logging.getLogger("eventflow.retry")
T = TypeVar("T")

RETRY_FOR_S = 120.0  # how long a sink keeps trying before its query fails (the supervisor restarts it)
# Serialization failure, deadlock, and the server going away or not accepting connections yet.
TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006"}


class PostgresUnavailable(EventFlowError):
    """Transient faults that outlasted the retry bound."""

    exit_code = 1


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, PostgresUnreachable):
        return True
    if isinstance(exc, psycopg.Error):
        return exc.sqlstate in TRANSIENT_SQLSTATES or (exc.sqlstate is None and isinstance(exc, psycopg.OperationalError))
    return False


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("PostgreSQL fault (attempt %d, retrying in %.1fs): %s", state.attempt_number,
                state.next_action.sleep if state.next_action else 0.0, first_line(exc) if exc else "?")


def with_retries(what: str, work: Callable[[], T], retry_for_s: float | None = None) -> T:
    """``work()``, retried on transient faults for up to ``retry_for_s`` seconds (default
    :data:`RETRY_FOR_S`), with jittered exponential waits of 0.5 to 10 s; then one clear error."""
    bound = RETRY_FOR_S if retry_for_s is None else retry_for_s
    retrying = Retrying(retry=retry_if_exception(is_transient), before_sleep=_log_retry, reraise=True,
                        stop=stop_after_delay(bound),
                        wait=wait_random_exponential(multiplier=0.5, max=10))
    try:
        return retrying(work)
    except Exception as exc:
        if is_transient(exc):
            raise PostgresUnavailable(f"{what}: PostgreSQL still failing after {bound:.0f}s "
                                      f"of retries: {first_line(exc)}") from exc
        raise
