"""Support's day in the admin: products, opt-out keywords, customers, conversations (SPEC §8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.admin.models import CHANGE, LogEntry

from compliance.models import OptOutKeyword
from messaging.models import Message
from recovery.models import Conversation, Customer, Product
from tests import factories
from tests.admin.conftest import flash, invitation
from tests.conftest import first_message, meta_payload

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 11, 24, 15, 0, tzinfo=UTC)
PHONE = "+5548999327881"


def product_form(product: Product, **changes: str) -> dict[str, str]:
    data = {
        "name": product.name,
        "description": product.description,
        "active": "on" if product.active else "",
        "payment_link": product.payment_link,
        "discount_link": product.discount_link,
        "discount_percent": str(product.discount_percent),
    }
    return {k: v for k, v in (data | changes).items() if v != ""}


# --- Products ---------------------------------------------------------------------------------


def test_support_edits_a_product_and_the_change_is_logged(support_client, support_user):
    product = factories.ProductFactory(name="Curso de Python")
    url = f"/admin/recovery/product/{product.pk}/change/"

    response = support_client.post(
        url,
        product_form(
            product,
            name="Curso de Python 2026",
            description="40 horas, certificado, acesso vitalício.",
            discount_link="https://pay.example.com/curso-python?cupom=VOLTA15",
            discount_percent="15",
            active="",
        ),
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.name == "Curso de Python 2026"
    assert product.description == "40 horas, certificado, acesso vitalício."
    assert product.discount_link == "https://pay.example.com/curso-python?cupom=VOLTA15"
    assert product.discount_percent == Decimal("15")
    assert product.active is False
    entry = LogEntry.objects.get(object_id=str(product.pk), user=support_user)
    assert entry.action_flag == CHANGE


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"payment_link": "pay.example.com sem esquema"}, "payment_link", "URL"),
        ({"discount_link": "cupom VOLTA10"}, "discount_link", "URL"),
        ({"discount_percent": "91"}, "discount_percent", "90"),
        ({"discount_percent": "-1"}, "discount_percent", "0"),
        ({"discount_link": ""}, "discount_link", "Um desconto precisa do link que o aplica."),
        ({"discount_percent": "0"}, "discount_percent", "Informe o percentual que o link de desconto dá"),
    ],
)
def test_a_product_with_a_bad_link_or_discount_is_refused_with_the_reason(
    support_client, changes, field, message
):
    product = factories.ProductFactory()

    response = support_client.post(
        f"/admin/recovery/product/{product.pk}/change/", product_form(product, **changes)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    product.refresh_from_db()
    assert product.discount_percent == Decimal("10")


def test_the_external_product_id_cannot_be_changed_once_carts_use_it(support_client):
    product = factories.ProductFactory(product_id="curso-python")

    support_client.post(
        f"/admin/recovery/product/{product.pk}/change/", product_form(product, product_id="outro") | {}
    )

    product.refresh_from_db()
    assert product.product_id == "curso-python"


# --- Opt-out keywords -------------------------------------------------------------------------


@pytest.fixture
def open_conversation() -> Conversation:
    customer = factories.CustomerFactory(phone=PHONE, name="Maria Silva")
    return factories.ConversationFactory(abandonment=factories.AbandonmentFactory(customer=customer))


def customer_writes(post_signed, django_capture_on_commit_callbacks, text: str) -> None:
    payload = meta_payload("text")
    message = first_message(payload)
    message["text"]["body"] = text
    message["timestamp"] = str(int(NOW.timestamp()))
    with django_capture_on_commit_callbacks(execute=True):
        assert post_signed("/webhook/messages", payload).status_code == 200


def test_a_keyword_added_in_the_admin_opts_out_the_very_next_message(
    support_client, open_conversation, post_signed, django_capture_on_commit_callbacks, outbox
):
    with time_machine.travel(NOW, tick=False):
        response = support_client.post(
            "/admin/compliance/optoutkeyword/add/", {"keyword": "Chega Disso", "active": "on"}
        )
        assert response.status_code == 302
        customer_writes(post_signed, django_capture_on_commit_callbacks, "chega disso!!")

    customer = Customer.objects.get(phone=PHONE)
    assert customer.opted_out is True
    assert customer.opted_out_reason == "keyword"
    open_conversation.refresh_from_db()
    assert open_conversation.close_reason == Conversation.CloseReason.OPTED_OUT
    assert OptOutKeyword.objects.get(keyword="chega disso").active is True


def test_a_keyword_deactivated_in_the_admin_no_longer_opts_out(
    support_client, run_action, open_conversation, post_signed, django_capture_on_commit_callbacks
):
    stop = OptOutKeyword.objects.get(keyword="stop")

    with time_machine.travel(NOW, tick=False):
        # Deactivating asks first (what it means for customers), then takes the reason.
        response = run_action(
            support_client,
            "/admin/compliance/optoutkeyword/",
            "deactivate",
            [stop.pk],
            apply="1",
            reason="clientes escrevem stop em inglês sem querer sair",
        )
        customer_writes(post_signed, django_capture_on_commit_callbacks, "stop")

    assert flash(response) == ["1 palavra-chave agora inativa."]
    assert Customer.objects.get(phone=PHONE).opted_out is False
    assert LogEntry.objects.get(object_id=str(stop.pk)).get_change_message() == (
        "Desativada. Motivo: clientes escrevem stop em inglês sem querer sair"
    )


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("!!!", "Uma palavra-chave precisa de letras ou números"),
        ("NAO QUERO", "“não quero” já cobre esta palavra-chave."),
        ("Parar", "“parar” já cobre esta palavra-chave."),
    ],
)
def test_a_keyword_that_matches_nothing_or_repeats_one_is_refused(support_client, typed, error):
    before = OptOutKeyword.objects.count()

    response = support_client.post("/admin/compliance/optoutkeyword/add/", {"keyword": typed, "active": "on"})

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["keyword"])
    assert OptOutKeyword.objects.count() == before


def test_support_cannot_delete_a_keyword_only_deactivate_it(support_client):
    stop = OptOutKeyword.objects.get(keyword="stop")

    response = support_client.post(f"/admin/compliance/optoutkeyword/{stop.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
    assert OptOutKeyword.objects.filter(pk=stop.pk).exists()


# --- Customers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "+5548999327881",
        "5548999327881",
        "+55 48 99932-7881",
        "(48) 99932-7881",
        "48 9932-7881",  # no ninth digit, as WhatsApp ids of old mobiles come
        "554899327881",
        "048 99932 7881",
        "9932-7881",  # a fragment: the last digits someone reads out
    ],
)
def test_a_customer_is_found_by_phone_typed_in_any_format(support_client, typed):
    maria = factories.CustomerFactory(phone=PHONE, name="Maria Silva")
    factories.CustomerFactory(phone="+5511987654321", name="João Souza")

    response = support_client.get("/admin/recovery/customer/", {"q": typed})

    assert list(response.context["cl"].result_list) == [maria]


def test_a_customer_is_still_found_by_name(support_client):
    factories.CustomerFactory(phone=PHONE, name="Maria Silva")
    joao = factories.CustomerFactory(phone="+5511987654321", name="João Souza")

    response = support_client.get("/admin/recovery/customer/", {"q": "joão"})

    assert list(response.context["cl"].result_list) == [joao]


def test_a_customer_page_shows_opt_out_state_abandonments_and_conversations(support_client):
    customer = factories.CustomerFactory(
        phone=PHONE, opted_out=True, opted_out_reason="keyword", opted_out_at=NOW
    )
    conversation = factories.ConversationFactory(
        abandonment=factories.AbandonmentFactory(customer=customer, external_id="ab-777"),
        status=Conversation.Status.CLOSED,
        close_reason=Conversation.CloseReason.OPTED_OUT,
    )

    response = support_client.get(f"/admin/recovery/customer/{customer.pk}/change/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "palavra-chave na mensagem" in page  # the opt-out reason "keyword", as support reads it
    assert "ab-777" in page
    assert f"/admin/recovery/conversation/{conversation.pk}/change/" in page
    assert "Descadastrou-se" in page  # the conversation's close reason


def test_support_opts_out_a_customer_at_their_request(support_client, support_user, run_action):
    customer = factories.CustomerFactory(phone=PHONE)
    conversation = factories.ConversationFactory(abandonment=factories.AbandonmentFactory(customer=customer))

    reason = "pediu por e-mail em 30/11, chamado 4521"

    response = run_action(
        support_client, "/admin/recovery/customer/", "opt_out", [customer.pk], apply="1", reason=reason
    )

    customer.refresh_from_db()
    conversation.refresh_from_db()
    assert customer.opted_out is True
    assert customer.opted_out_reason == "support"
    assert customer.opt_out_note == reason
    assert conversation.status == Conversation.Status.CLOSED
    assert flash(response) == [
        f"{customer} descadastrado: conversas abertas encerradas, nada mais é enviado."
    ]
    entry = LogEntry.objects.get(object_id=str(customer.pk), user=support_user)
    assert entry.get_change_message() == f"Descadastrado a pedido do cliente. Motivo: {reason}"


def test_the_opt_out_state_cannot_be_edited_by_hand(support_client):
    customer = factories.CustomerFactory(
        phone=PHONE, name="Maria", opted_out=True, opted_out_reason="keyword"
    )

    support_client.post(
        f"/admin/recovery/customer/{customer.pk}/change/",
        {"name": "Maria Silva", "opted_out": "", "opted_out_reason": "", "phone": "+5511987654321"}
        | inline_management_forms(),
    )

    customer.refresh_from_db()
    assert customer.name == "Maria Silva"
    assert (customer.opted_out, customer.opted_out_reason, customer.phone) == (True, "keyword", PHONE)


def inline_management_forms() -> dict[str, str]:
    forms = {}
    for prefix in ("abandonments", "conversations"):
        forms |= {
            f"{prefix}-TOTAL_FORMS": "0",
            f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
        }
    return forms


# --- Conversations ----------------------------------------------------------------------------


@pytest.fixture
def transcript() -> Conversation:
    """Maria's recovery: template, her price question, Sara's reply with a discount (read)."""
    customer = factories.CustomerFactory(phone=PHONE, name="Maria Silva")
    conversation = factories.ConversationFactory(
        abandonment=factories.AbandonmentFactory(customer=customer), status=Conversation.Status.ACTIVE
    )
    with time_machine.travel(NOW, tick=False):
        invitation(conversation, status=Message.Status.DELIVERED)
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        factories.InboundMessageFactory(
            conversation=conversation,
            text="Quanto custa?",
            status=Message.Status.PROCESSED,
            intent="price_question",
            sentiment="neutral",
        )
    with time_machine.travel(NOW + timedelta(minutes=6), tick=False):
        factories.OutboundMessageFactory(
            conversation=conversation,
            text="R$ 297,00, ou com 10% de desconto.",
            status=Message.Status.READ,
            metadata={"discount_offered": True, "in_reply_to": 2},
        )
    return conversation


def bubbles(page: str) -> list[str]:
    """The transcript's message bubbles, in page order."""
    return page.split('class="sara-bubble ')[1:]


def test_a_conversation_reads_as_a_transcript_in_time_order(support_client, transcript):
    response = support_client.get(f"/admin/recovery/conversation/{transcript.pk}/change/")

    template, question, reply = bubbles(response.content.decode())
    assert template.startswith("sara-out")
    assert "modelo convite do primeiro contato" in template
    # The approved template's text, as the customer read it, not its parameters.
    assert "Olá, Maria! Vi que você deixou Curso de Python no carrinho." in template
    assert ">entregue</span>" in template
    assert question.startswith("sara-in")
    assert "Quanto custa?" in question
    assert "intenção: pergunta o preço" in question
    assert "sentimento: neutro" in question
    assert reply.startswith("sara-out")
    assert "R$ 297,00, ou com 10% de desconto." in reply
    assert ">lida</span>" in reply
    assert "desconto oferecido" in reply


def test_a_failed_send_shows_in_the_transcript_with_its_error(support_client, transcript):
    factories.OutboundMessageFactory(
        conversation=transcript,
        status=Message.Status.FAILED,
        error_code="131026",
        error_detail="Message undeliverable",
    )

    page = support_client.get(f"/admin/recovery/conversation/{transcript.pk}/change/").content.decode()

    assert "131026: Message undeliverable" in page


def test_conversations_filter_by_status_and_needing_a_human(support_client):
    flagged = factories.ConversationFactory(status=Conversation.Status.ACTIVE, needs_human=True)
    factories.ConversationFactory(status=Conversation.Status.ACTIVE)
    factories.ConversationFactory(status=Conversation.Status.CLOSED, close_reason="converted")

    needs_human = support_client.get("/admin/recovery/conversation/", {"needs_human__exact": "1"})
    closed = support_client.get("/admin/recovery/conversation/", {"status__exact": "closed"})

    assert list(needs_human.context["cl"].result_list) == [flagged]
    assert [c.close_reason for c in closed.context["cl"].result_list] == ["converted"]


def test_support_closes_a_conversation_from_its_page_with_a_reason(support_client, support_user, transcript):
    page = support_client.get(f"/admin/recovery/conversation/{transcript.pk}/change/").content.decode()
    assert f"/admin/recovery/conversation/{transcript.pk}/close/" in page

    response = support_client.post(
        f"/admin/recovery/conversation/{transcript.pk}/close/", {"reason": "pagou por telefone"}, follow=True
    )

    transcript.refresh_from_db()
    assert transcript.status == Conversation.Status.CLOSED
    assert transcript.close_reason == "pagou por telefone"
    assert flash(response) == [f"Conversa {transcript.pk} resolvida: pagou por telefone."]
    entry = LogEntry.objects.get(object_id=str(transcript.pk), user=support_user)
    assert entry.get_change_message() == "Resolvida: pagou por telefone"


def test_closing_without_a_reason_is_refused(support_client, transcript):
    response = support_client.post(f"/admin/recovery/conversation/{transcript.pk}/close/", {"reason": ""})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    transcript.refresh_from_db()
    assert transcript.status == Conversation.Status.ACTIVE


def test_support_closes_several_conversations_from_the_list_after_giving_a_reason(support_client, run_action):
    first, second = (
        factories.ConversationFactory(),
        factories.ConversationFactory(status=Conversation.Status.ACTIVE),
    )
    already = factories.ConversationFactory(status=Conversation.Status.CLOSED, close_reason="converted")
    url = "/admin/recovery/conversation/"

    asked = support_client.post(
        url, {"action": "close_selected", "_selected_action": [first.pk, second.pk], "index": "0"}
    )
    assert asked.status_code == 200
    assert asked.templates[0].name == "admin/recovery/conversation/close.html"
    assert Conversation.objects.filter(status=Conversation.Status.CLOSED).count() == 1

    done = support_client.post(
        url,
        {
            "action": "close_selected",
            "_selected_action": [first.pk, second.pk, already.pk],
            "apply": "1",
            "reason": "campanha encerrada",
        },
        follow=True,
    )

    assert sorted(
        Conversation.objects.filter(close_reason="campanha encerrada").values_list("pk", flat=True)
    ) == [
        first.pk,
        second.pk,
    ]
    already.refresh_from_db()
    assert already.close_reason == "converted"
    assert f"A conversa {already.pk} já estava encerrada." in flash(done)


def test_a_closed_conversation_offers_no_close_button(support_client):
    conversation = factories.ConversationFactory(status=Conversation.Status.CLOSED, close_reason="converted")

    page = support_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()

    assert "/close/" not in page


def test_abandonments_filter_by_status_and_show_the_value_in_reais(support_client):
    factories.AbandonmentFactory(value=Decimal("1234.50"), status="converted")
    factories.AbandonmentFactory(status="expired")

    response = support_client.get("/admin/recovery/abandonment/", {"status__exact": "converted"})

    assert [a.status for a in response.context["cl"].result_list] == ["converted"]
    assert "R$ 1.234,50" in response.content.decode()
