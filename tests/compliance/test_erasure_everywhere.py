"""Erasure leaves nothing (SPEC §14): a person reached through every source, then erased.

Carla is reached the ways a shop reaches people: the generic checkout webhook, Hotmart and
Kiwify (cart and paid order, their payloads carrying her e-mail and CPF), Meta's single updates
and a raw batch shared with 60 other people, and a staff reply. After "Erase personal data" a
dump of the whole database holds none of her phone forms, e-mail, CPF, names, profile name or
texts; the other people's messages in the batch are untouched; and nothing is ever sent to her
again.
"""

from __future__ import annotations

import io
import json
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, Conversation, Customer
from tests.conftest import abandonment_body, meta_payload
from tests.factories import ProductFactory
from tests.recovery.platforms import SECRETS, payload, post

pytestmark = pytest.mark.django_db

# Kiwify's documented buyer (tests/fixtures/sources/kiwify); Hotmart's sample buyer (Ana Souza)
# is changed to the same person, so one person is reached through every source.
PHONE = "+5531991234567"
NAME = "Carla Mendes"
EMAIL = "carla.mendes@example.com"
CPF = "12345678909"
PROFILE = "Carlinha Confeitaria"
HER_TEXTS = ["Entrego na Rua das Palmeiras 77?", "Pode mandar no meu zap mesmo"]
STAFF_TEXT = "Oi Carla, separei o seu pedido com carinho"
HER_FORMS = [
    "5531991234567",
    "553191234567",  # WhatsApp's id without the ninth digit
    "31991234567",
    "3191234567",
    EMAIL,
    CPF,
    "Carla",
    "Mendes",
    PROFILE,
    "Palmeiras",
    "zap mesmo",
    "separei o seu pedido",
]
HOTMART_PRODUCT = "4774438"
KIWIFY_PRODUCT = "ba22c4a0-5c94-11ee-9c2d-8d32d7a17894"


@pytest.fixture(autouse=True)
def _platforms(settings):
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    settings.SARA_INLINE_BATCH_LIMIT = 50
    ProductFactory(product_id=HOTMART_PRODUCT, price="497.00", payment_link="https://pay.hotmart.com/X1")
    ProductFactory(product_id=KIWIFY_PRODUCT, price="297.00", payment_link="https://pay.kiwify.com.br/Y")


def _hotmart(name: str) -> dict:
    body = payload("hotmart", name)
    buyer = body["data"]["buyer"]
    buyer.update({"name": NAME, "email": EMAIL})
    buyer["phone" if "phone" in buyer else "checkout_phone"] = PHONE.lstrip("+")
    if "first_name" in buyer:
        buyer.update({"first_name": "Carla", "last_name": "Mendes", "document": CPF})
    return body


def _meta_text(wamid: str, text: str, wa_id: str = "553191234567") -> dict:
    body = meta_payload("text")
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"] = [{"profile": {"name": PROFILE}, "wa_id": wa_id}]
    value["messages"][0].update(
        {"from": wa_id, "id": wamid, "timestamp": str(int(time.time())), "text": {"body": text}}
    )
    return body


def _batch_with_others(her_wamid: str) -> dict:
    """Meta's batch shape: 60 other people and Carla in one body, over the inline limit."""
    body = _meta_text(her_wamid, HER_TEXTS[1])
    value = body["entry"][0]["changes"][0]["value"]
    for n in range(60):
        wa_id = f"5511987650{n:03d}"
        value["contacts"].append({"profile": {"name": f"Outra Pessoa {n}"}, "wa_id": wa_id})
        value["messages"].append(
            {
                "from": wa_id,
                "id": f"wamid.outra.{n}",
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": f"mensagem de outra pessoa {n}"},
            }
        )
    return body


def _dump() -> str:
    out = io.StringIO()
    call_command("dumpdata", stdout=out)
    # dumpdata escapes nothing that matters here; texts are compared as written.
    return out.getvalue()


def _carla_abandons(post_signed, cart: int, **fields: str):
    """Carla's cart number `cart`, as the platform posts it."""
    return post_signed(
        "/webhook/abandonment",
        abandonment_body(
            userId=f"u-carla-{cart}",
            name=NAME,
            phone=PHONE,
            paymentLink=f"https://pay.example.com/cart/carla-{cart}",
            abandonmentId=f"ab-carla-{cart}",
            **fields,
        ),
    )


def _reach_her_everywhere(client, post_signed, capture) -> None:
    with capture(execute=True):
        response = _carla_abandons(post_signed, 77)
        assert response.json()["status"] == "received"
        assert post(client, "hotmart", _hotmart("purchase_out_of_shopping_cart")).status_code == 200
        assert post(client, "hotmart", _hotmart("purchase_approved")).status_code == 200
        assert post(client, "kiwify", payload("kiwify", "carrinho_abandonado")).status_code == 200
        assert post_signed("/webhook/messages", _meta_text("wamid.carla.1", HER_TEXTS[0])).status_code == 200
        assert post_signed("/webhook/messages", _batch_with_others("wamid.carla.2")).status_code == 200
    staff = get_user_model().objects.create_superuser("chefe", password="x")
    conversation = Conversation.objects.get(customer__phone=PHONE, status__in=Conversation.OPEN_STATUSES)
    with capture(execute=True):
        response = client.post(
            f"/conversations/{conversation.pk}/reply",
            {"text": STAFF_TEXT},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}",
        )
        assert response.status_code == 202, response.content
        assert post(client, "kiwify", payload("kiwify", "order_approved")).status_code == 200
    assert WebhookEvent.objects.filter(type=WebhookEvent.Type.WHATSAPP).count() == 1  # the raw batch


def test_erasure_leaves_none_of_her_data_anywhere_and_she_is_never_contacted_again(
    client, admin_client, post_signed, django_capture_on_commit_callbacks, outbox
):
    _reach_her_everywhere(client, post_signed, django_capture_on_commit_callbacks)
    customer = Customer.objects.get(phone=PHONE)
    before = _dump()
    for form in HER_FORMS:
        assert form in before, f"the scenario never stored {form!r}"
    # The admin's history names her too.
    admin_client.post(
        f"/admin/recovery/customer/{customer.pk}/change/",
        {"name": NAME + " ", "opted_out_reason": "", "opt_out_note": ""},
    )

    response = admin_client.post(
        "/admin/recovery/customer/",
        {
            "action": "erase_personal_data",
            "_selected_action": [str(customer.pk)],
            "reason": "Pedido LGPD por e-mail, chamado 4521",
            "apply": "1",
        },
        follow=True,
    )
    assert response.status_code == 200

    after = _dump()
    left = [form for form in HER_FORMS if form in after]
    assert left == [], f"still stored after erasure: {left}"
    # The 60 other people in the shared batch are exactly as Meta sent them.
    [batch] = WebhookEvent.objects.filter(type=WebhookEvent.Type.WHATSAPP)
    value = batch.payload["entry"][0]["changes"][0]["value"]
    assert len(value["messages"]) == 60 and len(value["contacts"]) == 60
    assert value["messages"][0]["text"]["body"] == "mensagem de outra pessoa 0"
    assert Message.objects.filter(text__startswith="mensagem de outra pessoa").count() == 60
    # The figures stay: her carts and their values, counted but unreadable.
    assert Abandonment.objects.filter(customer=customer).count() == 3
    check = admin_client.post("/admin/recovery/customer/check-phone/", {"phone": "(31) 99123-4567"})
    assert "Bloquead" in check.content.decode() or "Blocked" in check.content.decode()

    outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = _carla_abandons(post_signed, 78, value="150.00")
        post_signed("/webhook/messages", _meta_text("wamid.carla.3", "Oi, ainda tem?"))
        carrinho = payload("kiwify", "carrinho_abandonado")
        carrinho["id"] = "7c1a0b9e-0000-4f6e-8c11-0b5c7e9a1f99"
        carrinho["product_id"] = "outro-produto"
        post(client, "kiwify", carrinho)
    assert again.json() == {"status": "skipped", "reason": "erased", "abandonmentId": "ab-carla-78"}
    assert outbox == []
    assert not Customer.objects.filter(phone=PHONE).exists()
    assert not Message.objects.filter(direction=Message.Direction.OUT, status=Message.Status.PENDING).exists()
    assert EMAIL not in json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))


def test_the_export_holds_her_email_cpf_profile_name_and_raw_events_and_nobody_elses(
    client, post_signed, django_capture_on_commit_callbacks, capsys
):
    _reach_her_everywhere(client, post_signed, django_capture_on_commit_callbacks)
    capsys.readouterr()  # the console backend's printed sends
    call_command("customer_export", PHONE)
    export = json.loads(capsys.readouterr().out)

    person = export["customer"]
    assert person["emails"] == [EMAIL]
    assert person["documents"] == [CPF]
    assert person["whatsapp_profile_names"] == [PROFILE]
    assert NAME in person["names"]
    texts = [m["text"] for c in export["conversations"] for m in c["messages"]]
    assert set(HER_TEXTS) <= set(texts) and STAFF_TEXT in texts
    kinds = sorted({event["type"] for event in export["raw_events"]})
    assert kinds == ["abandonment", "source", "whatsapp"]
    dumped = json.dumps(export, ensure_ascii=False)
    assert "outra pessoa" not in dumped and "Outra Pessoa" not in dumped, "someone else's data was exported"
