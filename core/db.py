"""Database connection hygiene around slow outside calls."""

from __future__ import annotations

from django.db import connection


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
