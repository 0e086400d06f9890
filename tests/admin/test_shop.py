"""The shop's knowledge in the admin: one row support edits, and Sara answers from it at once."""

from __future__ import annotations

import pytest

from recovery.models import SHOP_DEFAULTS, Shop
from tests.factories import AbandonmentFactory, ConversationFactory, CustomerFactory

pytestmark = pytest.mark.django_db

SHIPPING = "Frete fixo de R$ 15,00 para todo o Brasil; entrega em 3 a 8 dias úteis pela Jadlog."


def form(shop: Shop, **changes: str) -> dict[str, str]:
    data = {field: getattr(shop, field) for field in SHOP_DEFAULTS}
    data.update(changes)
    return data


def test_the_migration_leaves_one_shop_with_safe_brazilian_defaults():
    shop = Shop.objects.get()

    assert shop.name == "Nossa loja"
    assert "CEP" in shop.shipping and "PIX" in shop.payment_methods
    # Defaults promise no price, percentage or coupon the shop never made.
    assert "R$" not in " ".join(SHOP_DEFAULTS.values()) and "%" not in " ".join(SHOP_DEFAULTS.values())


def test_support_goes_straight_from_the_list_to_the_one_shop(support_client):
    shop = Shop.objects.get()

    response = support_client.get("/admin/recovery/shop/")

    assert response.status_code == 302
    assert response["Location"] == f"/admin/recovery/shop/{shop.pk}/change/"


def test_no_second_shop_can_be_added_and_the_shop_cannot_be_deleted(admin_client):
    shop = Shop.objects.get()

    assert admin_client.get("/admin/recovery/shop/add/").status_code == 403
    assert admin_client.post(f"/admin/recovery/shop/{shop.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Shop.objects.count() == 1


def test_a_shipping_text_edited_in_the_admin_is_what_sara_answers(support_client, say, outbox):
    shop = Shop.objects.get()
    ConversationFactory(abandonment=AbandonmentFactory(customer=CustomerFactory(phone="+5548999327881")))

    response = support_client.post(f"/admin/recovery/shop/{shop.pk}/change/", form(shop, shipping=SHIPPING))
    assert response.status_code == 302
    say("Em quantos dias chega?")

    (sent,) = [message.text for _, message in outbox]
    assert sent.startswith(f"{SHIPPING}")
