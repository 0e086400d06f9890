"""Plain INSERTs built from a model's own fields, for the few hot paths that bypass the ORM.

A hand-written column list goes stale the day a field is added: the INSERT then fails at run
time (a NOT NULL column left out) with no test failing first. Built here, a statement names
the columns the caller gives as parameters and every other column with a default, spelled as a
SQL literal (what the ORM would have inserted); it leaves out only what the database fills by
itself (a db_default, or NULL). A field with none of these stops the statement from being
built at all, so the first test that imports its module fails and names the field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import NOT_PROVIDED, Field, JSONField, Model


@dataclass(frozen=True)
class InsertParts:
    """The pieces of `INSERT INTO table (columns) VALUES (values)`: `values` holds a `%s` for
    each given column, in the order given, then the defaults of the others."""

    table: str
    columns: str
    values: str
    named: tuple[str, ...]  # every column the statement names


def insert_parts(model: type[Model], *, given: Sequence[str]) -> InsertParts:
    """The column list and value row of a plain INSERT of `model`; `given` are field names."""
    fields = {field.name: field for field in model._meta.concrete_fields if not field.primary_key}
    unknown = set(given) - set(fields)
    if unknown:
        raise ImproperlyConfigured(f"{model.__name__} has no fields {sorted(unknown)}.")
    columns = [fields[name].column for name in given]
    values = ["%s"] * len(given)
    for name, field in fields.items():
        if name in given:
            continue
        if not field.has_default() and (field.db_default is not NOT_PROVIDED or field.null):
            continue  # the database fills it: its default, or NULL
        columns.append(field.column)
        values.append(_default_literal(model, field))
    return InsertParts(
        table=model._meta.db_table, columns=", ".join(columns), values=", ".join(values), named=tuple(columns)
    )


def _default_literal(model: type[Model], field: Field) -> str:
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
