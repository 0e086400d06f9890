"""Statements of recovery/sql.py against the ORM query each replaces (SPEC §12); the money
report's statement has its own file (test_money_sql.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from messaging.models import Message
from recovery import sql
from recovery.models import Abandonment, Conversation, Customer, Product, Shop
from tests.factories import (
    AbandonmentFactory,
    ConversationFactory,
    CustomerFactory,
    OutboundMessageFactory,
    ProductFactory,
)

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


def _seen(conversation: Conversation | None) -> object:
    if conversation is None:
        return None
    cart = conversation.abandonment
    return (
        model_to_dict(conversation),
        model_to_dict(conversation.customer),
        model_to_dict(cart),
        cart.product and model_to_dict(cart.product),
    )


@pytest.mark.parametrize("lock", [False, True], ids=["read", "locked"])
def test_open_conversation_is_the_orms_newest_open_one(lock: bool) -> None:
    S = Conversation.Status
    open_one = ConversationFactory(status=S.ACTIVE)
    phone = open_one.customer.phone
    ConversationFactory(abandonment=AbandonmentFactory(customer=open_one.customer), status=S.CLOSED)
    without_product = ConversationFactory(abandonment=AbandonmentFactory(product=None)).customer.phone
    closed = ConversationFactory(status=S.CLOSED).customer.phone
    for asked in (phone, without_product, closed, "+5548000000000"):
        expected = (
            Conversation.objects.select_related("customer", "abandonment__product")
            .filter(customer__phone=asked, status__in=Conversation.OPEN_STATUSES)
            .order_by("-created_at")
            .first()
        )
        assert _seen(sql.open_conversation(asked, lock=lock, lock_customer=lock)) == _seen(expected)
    found = sql.open_conversation(phone, lock=lock)
    assert found is not None and found.pk == open_one.pk


def test_outbound_message_is_the_orms_message_with_its_recipient() -> None:
    message = OutboundMessageFactory()
    for pk in (message.pk, 0):
        expected = (
            Message.objects.select_related("conversation__customer", "conversation__abandonment")
            .filter(pk=pk)
            .first()
        )
        found = sql.outbound_message(pk)
        assert (found and [model_to_dict(row) for row in found]) == (
            expected
            and [
                model_to_dict(row)
                for row in (
                    expected,
                    expected.conversation,
                    expected.conversation.customer,
                    expected.conversation.abandonment,
                )
            ]
        )
    assert sql.outbound_message(message.pk) is not None
