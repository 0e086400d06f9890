"""Model rows read with plain SQL, for the few hot paths where building the ORM query costs more
CPU than the database spends running it (bench/RESULTS.md: `as_sql` was the largest single cost
of a worker's message).

The select list is made from the model's own fields (`_meta.concrete_fields`), so a field added
to a model is read here too; values go through the same converters the ORM applies, and rows
become ordinary model instances (`Model.from_db`), so code reading them cannot tell the
difference. What stays hand-written is the FROM and WHERE of each query, beside the code that
runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Model


def columns(model: type[Model], alias: str) -> str:
    """Every concrete column of `model` under the table alias, in `_meta` order."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields)


@cache
def _converters(model: type[Model], vendor: str) -> tuple[tuple[int, tuple[Callable, ...], Any], ...]:
    """The backend's and the fields' converters per column, as the ORM's compiler finds them."""
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((index, tuple(converters), column))
    return tuple(found)


def instances(row: Sequence[Any], models: Sequence[type[Model]]) -> list[Model]:
    """One instance per model from a row that holds `columns()` of each, in that order."""
    made: list[Model] = []
    start = 0
    for model in models:
        width = len(model._meta.concrete_fields)
        values = list(row[start : start + width])
        for index, converters, column in _converters(model, connection.vendor):
            value = values[index]
            for convert in converters:
                value = convert(value, column, connection)
            values[index] = value
        made.append(model.from_db(connection.alias, None, values))
        start += width
    return made


def fetch_one(sql: str, params: Sequence[Any], models: Sequence[type[Model]]) -> list[Model] | None:
    """The first row of `sql` as instances of `models`, or None when there is no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else instances(row, models)


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run one statement; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def db_datetime(value: Any) -> Any:
    """A datetime as the database driver takes it (SQLite wants text)."""
    return connection.ops.adapt_datetimefield_value(value)


def save_fields(instance: Model, fields: Iterable[str]) -> None:
    """`instance.save(update_fields=fields)` as one plain UPDATE by primary key.

    Values are prepared by each field as `save()` prepares them (`auto_now` included); no
    signal is sent (Sara connects none to its models).
    """
    meta = instance._meta
    quote = connection.ops.quote_name
    assignments = []
    params = []
    for name in fields:
        field = meta.get_field(name)
        value = field.pre_save(instance, False)  # sets auto_now fields on the instance too
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    params.append(instance.pk)
    execute(
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {quote(meta.pk.column)} = %s",  # noqa: S608
        params,
    )


def insert(instance: Model) -> None:
    """`instance.save()` of a new row as one plain INSERT … RETURNING its primary key.

    Every concrete field but an automatic primary key is written, prepared by the field as
    `save()` prepares it (`auto_now_add` included); no signal is sent. Where the database
    cannot return the key from the INSERT, or a value is a database expression, it is the
    ORM's own `save()`.
    """
    meta = instance._meta
    fields = [f for f in meta.concrete_fields if not (f.primary_key and f.db_returning)]
    values = [field.pre_save(instance, True) for field in fields]
    if not connection.features.can_return_columns_from_insert or any(
        hasattr(value, "resolve_expression") for value in values
    ):
        instance.save(force_insert=True)
        return
    quote = connection.ops.quote_name
    params = [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
