"""LGPD: a person's data exported on request, and erased while their opt-out keeps working."""

from __future__ import annotations

import json
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.lgpd import ERASED_PREFIX
from messaging.models import Message, WebhookEvent
from recovery.models import Abandonment, Conversation, Customer
from tests.conftest import first_message, meta_payload

pytestmark = pytest.mark.django_db

PHONE = "+5548999327881"
CART = {
    "userId": "u-42",
    "name": "Maria Silva",
    "phone": PHONE,
    "productId": "curso-python",
    "paymentLink": "https://pay.example.com/cart/42",
    "abandonmentId": "ab-42",
    "value": "297.00",
}


@pytest.fixture
def recovery_with_talk(post_signed, django_capture_on_commit_callbacks, outbox):
    """Maria abandoned a cart and asked a question: every kind of personal data is stored."""
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/abandonment", CART).status_code == 200
    payload = meta_payload("text")
    message = first_message(payload)
    message["timestamp"] = str(int(time.time()))
    message["text"]["body"] = "Meu CPF é 123.456.789-00, tem desconto?"
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200
    return Customer.objects.get(phone=PHONE)


def say(post_signed, django_capture_on_commit_callbacks, text: str, wamid: str) -> None:
    payload = meta_payload("text")
    message = first_message(payload)
    message.update({"id": wamid, "timestamp": str(int(time.time()))})
    message["text"]["body"] = text
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200


def test_export_holds_everything_stored_about_the_person(recovery_with_talk, capsys):
    call_command("customer_export", "+55 (48) 99932-7881")
    export = json.loads(capsys.readouterr().out)
    assert export["customer"]["phone"] == PHONE
    assert export["customer"]["name"] == "Maria Silva"
    [abandonment] = export["abandonments"]
    assert abandonment["abandonmentId"] == "ab-42"
    assert abandonment["value"] == "297.00"
    [conversation] = export["conversations"]
    texts = [m["text"] for m in conversation["messages"]]
    assert "Meu CPF é 123.456.789-00, tem desconto?" in texts
    assert any("https://pay.example.com/cart/42" in t for t in texts)


def test_export_of_an_unknown_phone_says_so():
    with pytest.raises(CommandError, match="No customer"):
        call_command("customer_export", PHONE)


def test_erase_removes_phone_name_and_texts_but_keeps_the_figures(recovery_with_talk):
    call_command("customer_erase", PHONE)
    customer = Customer.objects.get(pk=recovery_with_talk.pk)
    assert customer.phone.startswith(ERASED_PREFIX)
    assert PHONE.lstrip("+") not in customer.phone
    assert customer.name == ""
    assert not Message.objects.exclude(text="").exists()
    assert not Message.objects.exclude(wa_id="").exists()
    for metadata in Message.objects.values_list("metadata", flat=True):
        # Only what the money page counts stays: the template's name, never its parameters.
        assert set(metadata) <= {"template", "tokens"}
        assert set(metadata.get("template", {})) <= {"name", "language"}
    assert Message.objects.count() == 3  # template, question, reply: counted, not readable
    abandonment = Abandonment.objects.get()
    assert abandonment.value == 297
    assert abandonment.external_id.startswith(ERASED_PREFIX), "the checkout's id leads back to the person"
    assert abandonment.external_user_id == ""
    assert Conversation.objects.get().status == Conversation.Status.CLOSED
    stored = json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))
    assert "99932" not in stored and "Maria" not in stored


def test_an_erased_opted_out_person_is_still_never_contacted(
    recovery_with_talk, post_signed, django_capture_on_commit_callbacks, outbox
):
    say(post_signed, django_capture_on_commit_callbacks, "PARAR", "wamid.lgpd.stop")
    call_command("customer_erase", PHONE)
    outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed("/webhook/abandonment", {**CART, "abandonmentId": "ab-43"})
    assert response.json() == {"status": "skipped", "reason": "opted_out", "abandonmentId": "ab-43"}
    assert outbox == []
    assert not Customer.objects.filter(phone=PHONE).exists(), "the erased phone was stored again"
    say(post_signed, django_capture_on_commit_callbacks, "Oi, ainda tem?", "wamid.lgpd.later")
    assert outbox == []


def test_an_erased_person_who_had_not_opted_out_is_never_contacted_again(
    recovery_with_talk, post_signed, django_capture_on_commit_callbacks, outbox
):
    call_command("customer_erase", PHONE)
    outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed("/webhook/abandonment", {**CART, "abandonmentId": "ab-44"})
    assert response.json() == {"status": "skipped", "reason": "erased", "abandonmentId": "ab-44"}
    assert Abandonment.objects.get(external_id="ab-44").skip_reason == "erased"
    assert not Customer.objects.filter(phone=PHONE).exists(), "the erased phone was stored again"
    say(post_signed, django_capture_on_commit_callbacks, "Oi, ainda tem?", "wamid.lgpd.after")
    assert outbox == []


def test_erasing_twice_changes_nothing_more(recovery_with_talk):
    call_command("customer_erase", PHONE)
    erased = Customer.objects.get(pk=recovery_with_talk.pk).phone
    with pytest.raises(CommandError, match="No customer"):
        call_command("customer_erase", "+5511987654321")
    call_command("customer_erase", PHONE)
    assert Customer.objects.get(pk=recovery_with_talk.pk).phone == erased
