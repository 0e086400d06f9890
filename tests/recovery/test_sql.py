"""Statements of recovery/sql.py against the ORM query each replaces (SPEC §12); the money
report's statement has its own file (test_money_sql.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from recovery import sql
from recovery.models import Abandonment, Customer, Product, Shop
from tests.factories import AbandonmentFactory, CustomerFactory, ProductFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_shop_first_is_the_orms_first_shop() -> None:
    Shop.objects.all().delete()
    assert sql.shop_first() is None
    Shop.objects.create(name="Loja B")
    Shop.objects.create(name="Loja C")
    found = sql.shop_first()
    expected = Shop.objects.order_by("id").first()
    assert found is not None and expected is not None
    assert (found.pk, found.name, found.about) == (expected.pk, expected.name, expected.about)


def test_active_product_is_the_orms_active_product() -> None:
    on, off = ProductFactory(product_id="curso-1"), ProductFactory(product_id="curso-2", active=False)
    for product_id in (on.product_id, off.product_id, "nenhum"):
        found = sql.active_product(product_id)
        expected = Product.objects.filter(product_id=product_id, active=True).first()
        assert (found and (found.pk, found.name, found.discount_percent)) == (
            expected and (expected.pk, expected.name, expected.discount_percent)
        )
    assert sql.active_product("curso-1") is not None


def test_person_held_out_since_is_the_orms_exists() -> None:
    now = timezone.now()
    held = AbandonmentFactory(held_out=True)
    Abandonment.objects.filter(pk=held.pk).update(created_at=now)
    AbandonmentFactory(customer=held.customer, held_out=False)
    other = AbandonmentFactory(held_out=False).customer
    answers = []
    for customer_id in (held.customer_id, other.pk):
        for since in (now - timedelta(minutes=1), now, now + timedelta(seconds=1)):
            expected = Abandonment.objects.filter(
                customer_id=customer_id, held_out=True, created_at__gte=since
            ).exists()
            assert sql.person_held_out_since(customer_id=customer_id, since=since) == expected
            answers.append(expected)
    assert answers == [True, True, False, False, False, False]


def _run(statement: str, params: dict[str, object]) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def test_the_customer_locks_take_the_rows_the_orm_locks() -> None:
    customer, other = CustomerFactory(), CustomerFactory()
    for phone in (customer.phone, other.phone, "+5548000000000"):
        expected = list(Customer.objects.select_for_update().filter(phone=phone).values_list("id"))
        assert _run(sql._CUSTOMER_LOCK, {"phone": phone}) == expected
    for pk in (customer.pk, other.pk, 0):
        # Django has no FOR SHARE: the rows are those of the plain filter.
        shared = Customer.objects.filter(pk=pk).exists()
        assert bool(_run(sql._CUSTOMER_SHARE, {"id": pk})) == shared
        sql.customer_hold(pk)


@pytest.mark.parametrize(
    ("phone", "erased"), [("+5548990000001", "h-none"), ("taken", "h-none"), ("+5548990000002", "erased")]
)
def test_customer_insert_stores_what_the_orm_would(phone: str, erased: str) -> None:
    taken = CustomerFactory(phone="+5548990000009")
    CustomerFactory(phone="h-erased", name="")
    phone = taken.phone if phone == "taken" else phone
    erased_phone = "h-erased" if erased == "erased" else erased

    def orm() -> int | None:
        if Customer.objects.filter(phone__in=[phone, erased_phone]).exists():
            return None
        return Customer.objects.create(phone=phone, name="Ana").pk

    def raw() -> int | None:
        made = sql.customer_insert(phone=phone, name="Ana", erased_phone=erased_phone)
        return made and made.pk

    def effect(run: Callable[[], int | None]) -> tuple[bool, list[dict[str, object]]]:
        point = transaction.savepoint()
        try:
            made = run() is not None
            return made, [{**row, "id": None} for row in Customer.objects.order_by("phone").values()]
        finally:
            transaction.savepoint_rollback(point)

    with time_machine.travel(timezone.now(), tick=False):
        assert effect(raw) == effect(orm)
    assert effect(raw)[0] == (erased == "h-none" and phone != taken.phone)
