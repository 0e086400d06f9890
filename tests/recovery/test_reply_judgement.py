"""Judgement (SPEC §5): unsure or annoyed, Sara does not push; the discount link goes out once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from messaging.models import Message
from sara.rules import STOP_OFFER
from tests.recovery.conftest import DISCOUNT_LINK, PAYMENT_LINK, recovery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("frozen_clock")]


@pytest.mark.parametrize(
    "text",
    [
        "de novo essa mensagem? todo dia isso",
        "vcs mandam mensagem demais, que chato",
        "aff, de novo mensagem de vcs",
    ],
)
def test_a_complaint_about_being_messaged_gets_no_link_and_the_way_to_stop(reply_to, text):
    conversation = recovery(value=Decimal("900.00"))

    reply = reply_to(text)

    assert STOP_OFFER in reply
    assert "http" not in reply
    conversation.refresh_from_db()
    conversation.abandonment.refresh_from_db()
    assert conversation.customer.opted_out is False
    assert conversation.abandonment.discount_offers == 0
    assert Message.objects.get(direction="out").metadata["judgement"] == "no_links"


def test_a_second_question_without_price_gets_no_second_discount_link(reply_to):
    conversation = recovery(value=Decimal("900.00"))

    first = reply_to("Sim, vou finalizar")
    second = reply_to("tem garantia?")
    third = reply_to("e quanto fica no total?")

    assert DISCOUNT_LINK in first
    assert DISCOUNT_LINK not in second
    assert PAYMENT_LINK in second
    # Asking about the price again brings the offer back.
    assert DISCOUNT_LINK in third
    conversation.abandonment.refresh_from_db()
    assert conversation.abandonment.discount_offers == 2


def test_an_annoyed_customer_gets_a_short_answer_without_discount_or_invitation(reply_to):
    conversation = recovery(value=Decimal("900.00"))

    reply = reply_to("que absurdo, pessimo isso")

    assert DISCOUNT_LINK not in reply
    assert "finalizar?" not in reply.split("\n\n")[0]
    conversation.abandonment.refresh_from_db()
    assert conversation.abandonment.discount_offers == 0


def test_an_unclear_message_after_a_complaint_is_not_sold_to(reply_to):
    recovery(value=Decimal("900.00"))

    reply_to("que chato, todo dia mensagem")
    reply = reply_to("hm")

    assert DISCOUNT_LINK not in reply


def test_a_stop_word_the_rules_cannot_place_neither_opts_out_nor_sells(reply_to):
    conversation = recovery(value=Decimal("900.00"))

    reply = reply_to("chega")

    assert STOP_OFFER in reply
    assert "http" not in reply
    conversation.refresh_from_db()
    assert conversation.customer.opted_out is False


@pytest.mark.parametrize(
    "text",
    [
        "n tenho interesse. n me manda mais nada",
        "ja falei mil vezes q nao quero nada, que coisa chata",
        "bloqueia meu número aí, valeu",
        "não autorizo vocês a me mandarem mensagem",
    ],
)
def test_a_wish_to_stop_written_the_brazilian_way_opts_out_through_the_webhook(say, outbox, text):
    conversation = recovery(value=Decimal("297.00"))

    say(text)

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is True
    assert [m.text for _, m in outbox] == [
        "Tudo bem, você não receberá mais mensagens nossas. Obrigado pela atenção e até logo!"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "não quero o azul, quero o vermelho",
        "fiquei com medo de nao servir, nunca comprei roupa pela internet",
    ],
)
def test_a_willing_buyer_is_not_opted_out(reply_to, text):
    conversation = recovery(value=Decimal("297.00"))

    reply = reply_to(text)

    conversation.refresh_from_db()
    assert conversation.customer.opted_out is False
    assert PAYMENT_LINK in reply


def test_a_topic_reply_repeats_no_label_and_stays_short(reply_to):
    recovery(value=Decimal("297.00"))

    reply = reply_to("parcela em quantas vezes?")

    words = reply.split("\n\nFinalize")[0]
    assert "Parcelamento:" not in words
    assert len(words.splitlines()) <= 4
