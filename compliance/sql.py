"""Plain SQL on compliance's tables, composed from their models' `_meta` (see core.sql).

Used where building the ORM statement cost more CPU than running it (bench/RESULTS.md).
"""

from __future__ import annotations

from django.db import connection
from psycopg import sql as pg_sql

from compliance.models import OptOutKeyword

# OptOutKeyword.objects.filter(active=True).values_list("keyword", flat=True)
_ACTIVE_KEYWORDS = (
    pg_sql.SQL("SELECT {keyword} FROM {table} WHERE {active} = %(active)s")
    .format(
        keyword=pg_sql.Identifier(OptOutKeyword._meta.get_field("keyword").column),
        table=pg_sql.Identifier(OptOutKeyword._meta.db_table),
        active=pg_sql.Identifier(OptOutKeyword._meta.get_field("active").column),
    )
    .as_string(None)
)


def active_keywords() -> tuple[str, ...]:
    """The active opt-out keywords as staff typed them, in no particular order."""
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_KEYWORDS, {"active": True})
        return tuple(keyword for (keyword,) in cursor.fetchall())
