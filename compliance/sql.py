"""Plain SQL on compliance's tables, composed from their models' `_meta` (see core.sql).

Used where building the ORM statement cost more CPU than running it (bench/RESULTS.md).
"""

from __future__ import annotations

from django.db import connection
from psycopg import sql as pg_sql

from compliance.models import OptOutKeyword
from core import sql as core_sql

# OptOutKeyword.objects.filter(active=True).values_list("keyword", flat=True)
_ACTIVE_KEYWORDS = (
    pg_sql.SQL("SELECT {keyword} FROM {table} WHERE {active} = %(active)s")
    .format(
        keyword=core_sql.column(OptOutKeyword, "keyword"),
        table=core_sql.table(OptOutKeyword),
        active=core_sql.column(OptOutKeyword, "active"),
    )
    .as_string(None)
)


def active_keywords() -> tuple[str, ...]:
    """The active opt-out keywords as staff typed them, in no particular order."""
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_KEYWORDS, {"active": True})
        return tuple(keyword for (keyword,) in cursor.fetchall())
