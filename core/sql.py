"""Plain SQL built from a model's own fields, for the few hot paths that bypass the ORM.

A hand-written column list goes stale the day a field is added: the INSERT then fails at run
time (a NOT NULL column left out) with no test failing first. Built here, a statement names
the columns the caller gives as parameters and every other column with a default, spelled as a
SQL literal (what the ORM would have inserted); it leaves out only what the database fills by
itself (a db_default, or NULL). A field with none of these stops the statement from being
built at all, so the first test that imports its module fails and names the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import NOT_PROVIDED, Field, JSONField, Model
from psycopg import sql as pg_sql


@dataclass(frozen=True)
class InsertParts:
    """The pieces of `INSERT INTO table (columns) VALUES (values)`: `values` holds a `%s` for
    each given column, in the order given, then the defaults of the others."""

    table: str
    columns: str
    values: str
    named: tuple[str, ...]  # every column the statement names
    literals: tuple[str, ...]  # the default literals of the named columns not given, in order


def insert_parts(model: type[Model], *, given: Sequence[str]) -> InsertParts:
    """The column list and value row of a plain INSERT of `model`; `given` are field names."""
    fields = {field.name: field for field in model._meta.concrete_fields if not field.primary_key}
    unknown = set(given) - set(fields)
    if unknown:
        raise ImproperlyConfigured(f"{model.__name__} has no fields {sorted(unknown)}.")
    columns = [_column(fields[name]) for name in given]
    values = ["%s"] * len(given)
    literals = []
    for name, field in fields.items():
        if name in given:
            continue
        if not field.has_default() and (field.db_default is not NOT_PROVIDED or field.null):
            continue  # the database fills it: its default, or NULL
        columns.append(_column(field))
        literals.append(_default_literal(model, field))
    return InsertParts(
        table=model._meta.db_table,
        columns=", ".join(columns),
        values=", ".join(values + literals),
        named=tuple(columns),
        literals=tuple(literals),
    )


def insert_statement(model: type[Model], *, given: Sequence[str], rows: int | None = None) -> pg_sql.Composed:
    """`INSERT INTO table (columns) VALUES (...)` composed as `insert_parts` builds it, each given
    field a named parameter: `%(field)s` for one row, `%(field_<i>)s` for row i of `rows`."""
    parts = insert_parts(model, given=given)

    def row(suffix: str) -> pg_sql.Composed:
        values = [pg_sql.Placeholder(f"{name}{suffix}") for name in given]
        return pg_sql.SQL("({})").format(
            pg_sql.SQL(", ").join([*values, *(pg_sql.SQL(literal) for literal in parts.literals)])
        )

    return pg_sql.SQL("INSERT INTO {table} ({columns}) VALUES {rows}").format(
        table=table(model),
        columns=pg_sql.SQL(", ").join(pg_sql.Identifier(name) for name in parts.named),
        rows=pg_sql.SQL(", ").join([row("")] if rows is None else [row(f"_{i}") for i in range(rows)]),
    )


def _column(field: Field[Any, Any]) -> str:
    # A concrete field always has a column; the stubs allow None for those that have none.
    return cast(str, field.column)


def _default_literal(model: type[Model], field: Field[Any, Any]) -> str:
    value = field.get_default()
    if value is None:
        raise ImproperlyConfigured(
            f"{model.__name__}.{field.name} has no default and allows no NULL: a plain INSERT must "
            "give it (or give the field a default or a db_default)."
        )
    if isinstance(field, JSONField):
        return _text(json.dumps(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return _text(value)
    raise ImproperlyConfigured(
        f"{model.__name__}.{field.name}: its default {value!r} has no plain SQL spelling; give it."
    )


def _text(value: Any) -> str:
    # A quoted literal; "%" doubled because the statement still goes through parameter formatting.
    return "'" + str(value).replace("'", "''").replace("%", "%%") + "'"


# --- Identifiers for statements composed with psycopg's `sql` module -------------------------


def table(model: type[Model]) -> pg_sql.Identifier:
    """The model's table, quoted as an identifier."""
    return pg_sql.Identifier(model._meta.db_table)


def column(model: type[Model], name: str, alias: str | None = None) -> pg_sql.Identifier:
    """The column of the model's concrete field `name`, quoted as an identifier (`alias.column`
    with an alias)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise ImproperlyConfigured(f"{model.__name__}.{name} is no concrete field with a column.")
    return pg_sql.Identifier(field.column) if alias is None else pg_sql.Identifier(alias, field.column)


def text(statement: pg_sql.Composable) -> str:
    """A composed statement as the text Django's cursor takes (its `%(name)s` kept)."""
    return statement.as_string(None)


# --- Rows read and written as model instances ---------------------------------------------
# Where building the ORM query cost more CPU than running it (bench/RESULTS.md: `as_sql` was
# the largest single cost of a worker's message). Select lists come from `_meta.concrete_fields`
# (a field added to a model is read too), values go through the converters the ORM applies, and
# rows become ordinary instances (`Model.from_db`): code reading them cannot tell the difference.


def columns(model: type[Model], alias: str | None = None) -> pg_sql.Composed:
    """Every concrete column of `model` (under the table alias, if any), in `_meta` order."""
    return pg_sql.SQL(", ").join(
        pg_sql.Identifier(_column(field)) if alias is None else pg_sql.Identifier(alias, _column(field))
        for field in model._meta.concrete_fields
    )


@cache
def _converters(
    model: type[Model], vendor: str
) -> tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]:
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
        # Django reads `field_names` only when the values do not cover every concrete field.
        made.append(model.from_db(connection.alias, None, values))  # type: ignore[arg-type]
        start += width
    return made


def fetch_one(
    sql: str, params: Sequence[Any] | Mapping[str, Any], models: Sequence[type[Model]]
) -> list[Model] | None:
    """The first row of `sql` as instances of `models`, or None when there is no row."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else instances(row, models)


def fetch_instance[M: Model](sql: str, params: Sequence[Any] | Mapping[str, Any], model: type[M]) -> M | None:
    """The first row of `sql` as an instance of `model`, or None when there is no row."""
    found = fetch_one(sql, params, (model,))
    return None if found is None else cast(M, found[0])


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run one statement; the number of rows it changed."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        changed: int = cursor.rowcount
        return changed


def ping() -> None:
    """The database answers a trivial query; the driver's error otherwise."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


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
        field = cast("Field[Any, Any]", meta.get_field(name))  # a concrete field, not a relation
        value = field.pre_save(instance, False)  # sets auto_now fields on the instance too
        assignments.append(f"{quote(_column(field))} = %s")
        params.append(field.get_db_prep_save(value, connection))
    params.append(instance.pk)
    execute(
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {quote(_column(meta.pk))} = %s",  # noqa: S608
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
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_column(f)) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(_column(meta.pk))}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
