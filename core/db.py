"""Database connection hygiene around slow outside calls, and transactions that cross another."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable

from django.db import OperationalError, connection

logger = logging.getLogger(__name__)


def release_connection() -> None:
    """Give this thread's connection back to the pool before a slow outside call (OpenAI, Graph).

    A worker runs 60 threads on a pool of 30 connections: a thread that keeps its connection
    through a one-second AI call starves the others. Outside a transaction only,
    and only with a pool (a plain persistent connection would be torn down, not lent).
    """
    if connection.connection is None or connection.in_atomic_block:
        return
    if getattr(connection, "pool", None) is not None:
        connection.close()


# PostgreSQL's answers for "two transactions crossed; run yours again": deadlock_detected and
# serialization_failure. Nothing was written, so a retry is always safe.
LOCK_CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
LOCK_CONFLICT_ATTEMPTS = 3


def is_lock_conflict(error: BaseException) -> bool:
    """Whether the database rolled this transaction back for crossing another (retry it)."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) in LOCK_CONFLICT_SQLSTATES


def retry_on_lock_conflict[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Run a service that owns its transaction again when PostgreSQL ends it as a deadlock or a
    serialization failure, a few times, after a short jittered pause.

    Inside an outer transaction nothing is retried: that transaction is lost already, and its
    owner (a request, a task) is the one to run again.
    """

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, LOCK_CONFLICT_ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError as error:
                if (
                    attempt == LOCK_CONFLICT_ATTEMPTS
                    or connection.in_atomic_block
                    or not is_lock_conflict(error)
                ):
                    raise
                logger.warning(
                    "transaction crossed another; running it again",
                    extra={
                        "service": function.__qualname__,
                        "attempt": attempt,
                        "sqlstate": getattr(error.__cause__, "sqlstate", None),
                    },
                )
                time.sleep(random.uniform(0.05, 0.2) * attempt)
        raise AssertionError("unreachable")

    return run
