"""Plain SQL built from a model's own fields, for the few hot paths that bypass the ORM.

Statements are composed with psycopg's `sql` module from `_meta` (tables, columns, the fields
of a select list), so a renamed or added field is followed without editing a statement, and
values, defaults included, are always parameters. Rows come back as model instances the way
`QuerySet.raw()` makes them (the compiler's converters, then `Model.from_db`). Writes of whole
instances are the ORM's own (`save()`); only statements the ORM cannot build cheaply live here.

A hand-written column list goes stale the day a field is added: the INSERT then fails at run
time (a NOT NULL column left out) with no test failing first. Built here, an INSERT names the
columns the caller gives and every other column with a default (its value a parameter, as the
ORM would have inserted it); it leaves out only what the database fills by itself (a
db_default, or NULL). A field with none of these stops the statement from being built at all,
so the first test that imports its module fails and names the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.models import NOT_PROVIDED, Field, Model
from django.db.models.sql import Query
from psycopg import sql as pg_sql


@dataclass(frozen=True)
class Insert:
    """`INSERT INTO table (columns) VALUES (...)` of `model`: each given field a named
    parameter, then each other column the database cannot fill, its default a parameter too
    (`%(default_<field>)s`, from `defaults()`)."""

    model: type[Model]
    given: tuple[str, ...]
    defaulted: tuple[Field[Any, Any], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the statement names, the given ones first."""
        fields = self.model._meta
        return (
            *(_column(cast("Field[Any, Any]", fields.get_field(name))) for name in self.given),
            *(_column(field) for field in self.defaulted),
        )

    def values(self, suffix: str = "") -> pg_sql.Composed:
        """One row's values: `%(<field><suffix>)s` per given field, then the defaults'."""
        return pg_sql.SQL(", ").join(
            [
                *(pg_sql.Placeholder(f"{name}{suffix}") for name in self.given),
                *(pg_sql.Placeholder(f"default_{field.name}") for field in self.defaulted),
            ]
        )

    def statement(self, *, rows: int | None = None) -> pg_sql.Composed:
        """The INSERT of one row (`%(field)s`) or of `rows` rows (`%(field_<i>)s` for row i)."""
        suffixes = [""] if rows is None else [f"_{i}" for i in range(rows)]
        return pg_sql.SQL("INSERT INTO {table} ({columns}) VALUES {rows}").format(
            table=table(self.model),
            columns=pg_sql.SQL(", ").join(pg_sql.Identifier(name) for name in self.columns),
            rows=pg_sql.SQL(", ").join(pg_sql.SQL("({})").format(self.values(s)) for s in suffixes),
        )

    def defaults(self) -> dict[str, Any]:
        """The parameters of the defaults, prepared as `save()` prepares a value."""
        return {
            f"default_{field.name}": field.get_db_prep_save(field.get_default(), connection)
            for field in self.defaulted
        }


def insert(model: type[Model], *, given: Sequence[str]) -> Insert:
    """The plain INSERT of `model` with the fields `given` (by name)."""
    fields = {field.name: field for field in model._meta.concrete_fields if not field.primary_key}
    unknown = set(given) - set(fields)
    if unknown:
        raise ImproperlyConfigured(f"{model.__name__} has no fields {sorted(unknown)}.")
    defaulted = []
    for name, field in fields.items():
        if name in given:
            continue
        if not field.has_default() and (field.db_default is not NOT_PROVIDED or field.null):
            continue  # the database fills it: its default, or NULL
        if field.get_default() is None:  # what save() would insert: "" for text, else nothing
            raise ImproperlyConfigured(
                f"{model.__name__}.{field.name} has no default and allows no NULL: a plain INSERT must "
                "give it (or give the field a default or a db_default)."
            )
        defaulted.append(field)
    return Insert(model=model, given=tuple(given), defaulted=tuple(defaulted))


def _column(field: Field[Any, Any]) -> str:
    # A concrete field always has a column; the stubs allow None for those that have none.
    return cast(str, field.column)


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


def named_columns(model: type[Model], *names: str, alias: str | None = None) -> dict[str, pg_sql.Identifier]:
    """`{name: column}` of the model's fields, for `.format(**...)`: each placeholder named
    after its field."""
    return {name: column(model, name, alias) for name in names}


def text(statement: pg_sql.Composable) -> str:
    """A composed statement as the text Django's cursor takes (its `%(name)s` kept)."""
    return statement.as_string(None)


# --- Rows read as model instances -------------------------------------------------------------
# Where building the ORM query cost more CPU than running it (bench/RESULTS.md: `as_sql` was
# the largest single cost of a worker's message). Select lists come from `_meta.concrete_fields`
# (a field added to a model is read too) and rows become instances as `QuerySet.raw()` makes
# them, several models from one row where the statement joins them.


def columns(model: type[Model], alias: str | None = None) -> pg_sql.Composed:
    """Every concrete column of `model` (under the table alias, if any), in `_meta` order."""
    return pg_sql.SQL(", ").join(
        pg_sql.Identifier(_column(field)) if alias is None else pg_sql.Identifier(alias, _column(field))
        for field in model._meta.concrete_fields
    )


@cache
def _spans(
    models: tuple[type[Model], ...],
) -> tuple[tuple[Field[Any, Any], ...], tuple[tuple[type[Model], int, int, list[str]], ...]]:
    """The concrete fields of `models` in select-list order, and per model where its columns
    start and end in a row and their attribute names."""
    fields: list[Field[Any, Any]] = []
    spans = []
    for model in models:
        names = [field.attname for field in model._meta.concrete_fields]
        spans.append((model, len(fields), len(fields) + len(names), names))
        fields += model._meta.concrete_fields
    return tuple(fields), tuple(spans)


@cache
def _converting(fields: tuple[Field[Any, Any], ...], alias: str) -> tuple[Query, dict[int, Any]]:
    """What `RawModelIterable` works out per query, once per select list and database: the query
    its compiler stands on, and the converters of each column. The converters read settings
    only (the time zone, the field), the same for every thread's connection."""
    database = connections[alias]
    query = Query(fields[0].model)
    compiler = database.ops.compiler("SQLCompiler")(query, database, alias)
    return query, compiler.get_converters([field.get_col(field.model._meta.db_table) for field in fields])


def _converted(rows: Sequence[Sequence[Any]], fields: tuple[Field[Any, Any], ...]) -> list[list[Any]]:
    """Rows of the columns of `fields`, each value converted as the ORM converts it."""
    query, converters = _converting(fields, connection.alias)
    if not converters:
        return [list(row) for row in rows]
    # A compiler on this thread's connection, as the ORM makes one per query.
    database = connections[connection.alias]
    compiler = database.ops.compiler("SQLCompiler")(query, database, connection.alias)
    return list(compiler.apply_converters(rows, converters))


def fetch_rows(
    statement: str, params: Mapping[str, Any], fields: Sequence[Field[Any, Any]]
) -> list[list[Any]]:
    """Every row of `statement`, which selects the columns of `fields` in that order, its values
    as `values_list()` gives them."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return _converted(rows, tuple(fields))


def fetch_one(statement: str, params: Mapping[str, Any], models: Sequence[type[Model]]) -> list[Model] | None:
    """The first row of `statement`, which selects `columns()` of each model in that order, as
    one instance per model; None when there is no row."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        return None
    fields, spans = _spans(tuple(models))
    (values,) = _converted([row], fields)
    return [model.from_db(connection.alias, names, values[a:b]) for model, a, b, names in spans]


def fetch_instance[M: Model](statement: str, params: Mapping[str, Any], model: type[M]) -> M | None:
    """The first row of `statement` as an instance of `model`, or None when there is no row."""
    found = fetch_one(statement, params, (model,))
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
