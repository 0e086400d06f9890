"""Plain SQL on the recovery's tables, beside their models and built from their fields (core.sql).

Opening a cart runs these: building them with the ORM cost more CPU than running them
(bench/percall.py, "abandonment"). Each names the ORM query it stands for.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import cast

from django.db import connection
from django.utils import timezone

from core import sql as core_sql
from core.sql import insert_parts
from messaging.models import Message
from recovery.models import Abandonment, Conversation, Customer, Product

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
    # One instance per model asked for, in that order.
    conversation, customer, abandonment, product = cast(
        "tuple[Conversation, Customer, Abandonment, Product]", found
    )
    if product.pk is not None:
        abandonment.product = product
    conversation.customer = customer
    conversation.abandonment = abandonment
    return conversation


# The send path (messaging.services.outbound) reads its message with what the gate needs of
# the recipient: the message, its conversation, the customer and the cart, in one statement.
@cache
def _outbound_select() -> str:
    return (
        f"SELECT {core_sql.columns(Message, 'm')}, {core_sql.columns(Conversation, 'c')}, "  # noqa: S608
        f"{core_sql.columns(Customer, 'p')}, {core_sql.columns(Abandonment, 'a')} "
        f"FROM {Message._meta.db_table} m "
        f"JOIN {Conversation._meta.db_table} c ON c.id = m.conversation_id "
        f"JOIN {Customer._meta.db_table} p ON p.id = c.customer_id "
        f"JOIN {Abandonment._meta.db_table} a ON a.id = c.abandonment_id "
        "WHERE m.id = %s"
    )


def outbound_message(message_id: int) -> tuple[Message, Conversation, Customer, Abandonment] | None:
    found = core_sql.fetch_one(
        _outbound_select(), [message_id], (Message, Conversation, Customer, Abandonment)
    )
    if found is None:
        return None
    message, conversation, customer, abandonment = found
    return message, conversation, customer, abandonment  # type: ignore[return-value]


# Abandonment.objects.filter(customer_id=..., held_out=True, created_at__gte=...).exists(): a
# newer held-out cart of the same person keeps a reply queued before it from going out.
_PERSON_HELD_OUT = (
    f"SELECT EXISTS (SELECT 1 FROM {Abandonment._meta.db_table} h WHERE h.customer_id = %s "  # noqa: S608
    "AND h.held_out AND h.created_at >= %s)"
)


def person_held_out_since(*, customer_id: int, since: datetime) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_PERSON_HELD_OUT, [customer_id, connection.ops.adapt_datetimefield_value(since)])
        return bool(cursor.fetchone()[0])


# Customer.objects.select_for_share().filter(pk=...): an opt-out's UPDATE waits for a send
# already leaving (the send path holds it until Graph answers).
_CUSTOMER_SHARE = f"SELECT 1 FROM {Customer._meta.db_table} WHERE id = %s FOR SHARE"  # noqa: S608


def customer_hold(customer_id: int) -> None:
    if connection.vendor != "postgresql":
        # SQLite (the embedded default) has no row locks and runs one writer at a time; its
        # sends are made in-process, one after the other.
        return
    with connection.cursor() as cursor:
        cursor.execute(_CUSTOMER_SHARE, [customer_id])
