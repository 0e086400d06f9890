"""Plain SQL on the recovery's tables, beside their models and built from their fields (core.sql).

Opening a cart runs these: building them with the ORM cost more CPU than running them
(bench/percall.py, "abandonment"). Each names the ORM query it stands for.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cache
from typing import NamedTuple

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from psycopg import sql as pg_sql

from core import sql as core_sql
from core.sql import insert_parts
from messaging.models import Conversation
from recovery.models import Abandonment, Customer, Product

# Customer.objects.create(...) unless the phone is taken or is an erased person's. Most carts
# come from new customers: one statement stores them. ON CONFLICT rather than get_or_create:
# no savepoint, and an insert racing a concurrent cart's waits for it to commit and yields.
# A known phone still uses up a value of the id sequence; bigint ids have room.
CUSTOMER = insert_parts(Customer, given=("phone", "name", "created_at", "updated_at"))
_CUSTOMER_INSERT = f"""
    INSERT INTO {CUSTOMER.table} ({CUSTOMER.columns})
    SELECT {CUSTOMER.values}
    WHERE NOT EXISTS (SELECT 1 FROM {CUSTOMER.table} WHERE phone = %s)
    ON CONFLICT (phone) DO NOTHING
    RETURNING id
"""  # noqa: S608


def customer_insert(*, phone: str, name: str, erased_phone: str) -> Customer | None:
    """A new customer; None if the phone is taken or belongs to an erased person."""
    now = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_INSERT, [phone, name, stamp, stamp, erased_phone])
        row = cursor.fetchone()
    if row is None:
        return None
    customer = Customer(pk=row[0], phone=phone, name=name, created_at=now, updated_at=now)
    customer._state.adding = False  # stored, as bulk_create marks the rows it inserts
    return customer


# Product.objects.filter(product_id=..., active=True)
_ACTIVE_PRODUCT = f"SELECT * FROM {Product._meta.db_table} WHERE product_id = %s AND active"  # noqa: S608


def active_product(product_id: str) -> Product | None:
    return next(iter(Product.objects.raw(_ACTIVE_PRODUCT, [product_id])), None)


# The sender's open conversation with everything the worker reads of it (customer, cart,
# product), by phone: read twice per customer message, without locks and then under them.
_OPEN = "('" + "', '".join(Conversation.OPEN_STATUSES) + "')"


@cache
def _open_conversation_select(*, lock: bool) -> str:
    sql = (
        f"SELECT {core_sql.columns(Conversation, 'c')}, {core_sql.columns(Customer, 'p')}, "  # noqa: S608
        f"{core_sql.columns(Abandonment, 'a')}, {core_sql.columns(Product, 'pr')} "
        f"FROM {Conversation._meta.db_table} c "
        f"JOIN {Customer._meta.db_table} p ON p.id = c.customer_id "
        f"JOIN {Abandonment._meta.db_table} a ON a.id = c.abandonment_id "
        f"LEFT JOIN {Product._meta.db_table} pr ON pr.id = a.product_id "
        f"WHERE p.phone = %s AND c.status IN {_OPEN} ORDER BY c.created_at DESC LIMIT 1"
    )
    # FOR NO KEY UPDATE, as an UPDATE that keeps the keys takes: foreign-key checks of rows
    # pointing here (a message inserted for this conversation) do not wait for it.
    return sql + (" FOR NO KEY UPDATE OF c" if lock else "")


@cache
def _open_cart_lock() -> str:
    return (
        f"SELECT a.id FROM {Abandonment._meta.db_table} a "  # noqa: S608
        f"JOIN {Conversation._meta.db_table} c ON c.abandonment_id = a.id "
        f"JOIN {Customer._meta.db_table} p ON p.id = c.customer_id "
        f"WHERE p.phone = %s AND c.status IN {_OPEN} FOR NO KEY UPDATE OF a"
    )


# Customer.objects.select_for_update().filter(phone=...): taken first, before the cart, by a
# customer's message that opts them out (the opt-out writes the customer, then the cart).
_CUSTOMER_LOCK = f"SELECT id FROM {Customer._meta.db_table} WHERE phone = %s FOR UPDATE"  # noqa: S608


def open_conversation(phone: str, *, lock: bool, lock_customer: bool = False) -> Conversation | None:
    """The open conversation of the customer with this phone, its customer, cart and product
    loaded; with `lock`, the cart's row and then the conversation's stay locked until the
    transaction ends (that order: see recovery.lifecycle), and with `lock_customer` the
    customer's before them."""
    lock = lock and connection.features.has_select_for_update
    if lock:
        with connection.cursor() as cursor:
            if lock_customer:
                cursor.execute(_CUSTOMER_LOCK, [phone])
            cursor.execute(_open_cart_lock(), [phone])
    found = core_sql.fetch_one(
        _open_conversation_select(lock=lock), [phone], (Conversation, Customer, Abandonment, Product)
    )
    if found is None:
        return None
    conversation, customer, abandonment, product = found
    if product.pk is not None:
        abandonment.product = product
    conversation.customer = customer
    conversation.abandonment = abandonment
    return conversation


# --- The money report's tallies (recovery.money.figures) -----------------------------------------

DAY, TEMPLATE, STEP, HELD_STEP = 1, 2, 3, 4  # which grouping a row of money_tallies belongs to


class MoneyTally(NamedTuple):
    kind: int
    step: int | None
    key: str | None  # the template or the variant
    day: date | str | None
    share: Decimal
    held_out: bool
    carts: int
    paid: int
    value: Decimal
    value_squared: Decimal | float
    meta: Decimal
    model: Decimal
    discount: Decimal
    cost: Decimal | None


_NULL, _COUNT, _WON = pg_sql.SQL("NULL"), pg_sql.SQL("COUNT(*)"), pg_sql.Identifier("won")
# Typed: PostgreSQL settles a UNION's column types arm by arm, and a bare NULL pair becomes text.
_NO_STEP, _NO_COST = pg_sql.SQL("CAST(NULL AS INTEGER)"), pg_sql.SQL("CAST(NULL AS NUMERIC)")


def money_tallies(carts: QuerySet, *, steps: list[int]) -> list[MoneyTally]:
    """The cart facts (one row per cart, from the ORM) added up per day, template, step and
    variant, and per step for the held-out carts, each by holdout share, in one statement.

    The ORM cannot group the result of a grouped query again; this adds up in the database what
    would otherwise be every cart's row in Python (tests/recovery/test_money_sql.py compares the
    two).
    """
    inner, params = carts.query.sql_with_params()
    col = pg_sql.Identifier
    null = _NULL

    def arm(
        kind: int,
        *,
        where: pg_sql.Composable,
        group: list[pg_sql.Composable],
        step: int | None = None,
        key: pg_sql.Composable = null,
        day: pg_sql.Composable = null,
        held_out: pg_sql.Composable,
        carts: pg_sql.Composable = _COUNT,
        won: pg_sql.Composable = _WON,
        cost: pg_sql.Composable = _NO_COST,
    ) -> pg_sql.Composable:
        return pg_sql.SQL(
            "SELECT {kind} AS kind, {step} AS step, {key} AS key, {day} AS day, share, {held_out} AS held_out, "
            "{carts} AS carts, SUM({won}) AS paid, SUM({won} * value) AS value, "
            "SUM({won} * value * value) AS value_squared, SUM(meta) AS meta, SUM(model) AS model, "
            "SUM(given) AS discount, {cost} AS cost FROM cart WHERE {where} GROUP BY {group}"
        ).format(
            kind=pg_sql.Literal(kind),
            step=_NO_STEP if step is None else pg_sql.Literal(step),
            key=key,
            day=day,
            held_out=held_out,
            carts=carts,
            won=won,
            cost=cost,
            where=where,
            group=pg_sql.SQL(", ").join(group),
        )

    contacted, held = pg_sql.SQL("NOT held_out"), pg_sql.SQL("held_out")
    arms = [
        arm(
            DAY,
            where=pg_sql.SQL("TRUE"),
            group=[col("day"), col("share"), col("held_out")],
            day=col("day"),
            held_out=col("held_out"),
        ),
        arm(
            TEMPLATE,
            where=contacted,
            group=[col("template"), col("share")],
            key=col("template"),
            held_out=pg_sql.Literal(False),
        ),
    ]
    for order in steps:
        cost = col(f"cost_{order}")
        if order == steps[0]:
            # The first step also carries the cart's messages that belong to no step (replies...).
            cost = pg_sql.SQL(" - ").join([col("meta"), *(col(f"cost_{o}") for o in steps[1:])])
        arms += [
            arm(
                STEP,
                step=order,
                where=pg_sql.SQL("NOT held_out AND {} IS NOT NULL").format(col(f"sent_{order}")),
                group=[col(f"variant_{order}"), col("share")],
                key=col(f"variant_{order}"),
                held_out=pg_sql.Literal(False),
                won=col(f"won_{order}"),
                cost=pg_sql.SQL("SUM({})").format(cost),
            ),
            arm(
                HELD_STEP,
                step=order,
                where=held,
                group=[col("share")],
                held_out=pg_sql.Literal(True),
                carts=pg_sql.SQL("SUM({})").format(col(f"open_{order}")),
                won=col(f"held_won_{order}"),
            ),
        ]
    statement = pg_sql.SQL("WITH cart AS ({inner}) {arms}").format(
        inner=pg_sql.SQL(inner), arms=pg_sql.SQL(" UNION ALL ").join(arms)
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(None), params)
        return [MoneyTally(*row) for row in cursor.fetchall()]
