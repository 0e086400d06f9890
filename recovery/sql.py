"""Plain SQL on the recovery's tables, beside their models and built from their fields (core.sql).

Opening a cart runs these: building them with the ORM cost more CPU than running them
(bench/percall.py, "abandonment"). Each names the ORM query it stands for.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from core.sql import insert_parts
from recovery.models import Customer, Product

# Customer.objects.create(...) unless the phone is taken or is an erased opt-out's. Most carts
# come from new customers: one statement stores them. ON CONFLICT rather than get_or_create:
# no savepoint, and an insert racing a concurrent cart's waits for it to commit and yields.
# A known phone still uses up a value of the id sequence; bigint ids have room.
CUSTOMER = insert_parts(Customer, given=("phone", "name", "created_at", "updated_at"))
_CUSTOMER_INSERT = f"""
    INSERT INTO {CUSTOMER.table} ({CUSTOMER.columns})
    SELECT {CUSTOMER.values}
    WHERE NOT EXISTS (SELECT 1 FROM {CUSTOMER.table} WHERE phone = %s AND opted_out)
    ON CONFLICT (phone) DO NOTHING
    RETURNING id
"""  # noqa: S608


def customer_insert(*, phone: str, name: str, erased_phone: str) -> Customer | None:
    """A new customer; None if the phone is taken or belongs to an erased person who opted out."""
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
