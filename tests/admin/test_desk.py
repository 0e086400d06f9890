"""The support desk (SPEC §8): the paged inbox, the waiting count on every page, the customer who
writes back, the workspace, notes, canned replies, assignment, unread markers, search, the
reply's guardrails and the integrations API's answer to a reply that breaks them."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from backoffice.selectors import dashboard
from messaging.models import Message, WebhookEvent
from recovery.models import CannedReply, Conversation, PrivateNote
from tests.admin.conftest import INBOX, NOW, flash
from tests.admin.conftest import handoff_step as step
from tests.admin.conftest import waiting_for_person as waiting
from tests.conftest import ON_POSTGRES
from tests.factories import (
    CustomerFactory,
    InboundMessageFactory,
    OutboundMessageFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_at_now")]


def page_of(client, conversation: Conversation) -> str:
    return client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()


# --- Every waiting conversation is reachable -------------------------------------------------


def test_the_inbox_pages_through_every_waiting_conversation_with_the_dashboards_count(support_client):
    conversations = [waiting(name=f"Cliente {n}", waited=timedelta(minutes=300 - n)) for n in range(250)]

    seen: list[int] = []
    url = INBOX
    for _ in range(10):
        response = support_client.get(url)
        assert response.context["total_waiting"] == 250
        assert "250 conversations waiting" in response.content.decode()
        seen += [row["conversation"].pk for row in response.context["rows"]]
        if not response.context["page"].has_next():
            break
        url = f"{INBOX}?p={response.context['page'].next_page_number()}"

    assert seen == [c.pk for c in conversations]  # all 250, the longest wait first, none twice
    assert dashboard(now=NOW).waiting_for_person == 250  # the dashboard's own count


def test_an_inbox_row_shows_the_carts_value_the_window_and_unread_messages(support_client):
    open_window = waiting(name="Ana", abandonment__value=Decimal("1299.00"))
    closed_window = waiting(name="Bruno", waited=timedelta(hours=30))
    InboundMessageFactory(conversation=open_window, text="Oi?", status="processed")
    InboundMessageFactory(conversation=open_window, text="Alguém aí?", status="processed")

    html = support_client.get(INBOX).content.decode()

    ana = html[html.index(f'id="inbox-{open_window.pk}"') :]
    ana = ana[: ana.index("</tr>")]
    assert "R$ 1.299,00" in ana
    assert "window open" in ana
    assert "2 new" in ana
    bruno = html[html.index(f'id="inbox-{closed_window.pk}"') :]
    assert "window closed" in bruno[: bruno.index("</tr>")]


def test_the_wait_counts_from_the_oldest_customer_message_nobody_answered(support_client, support_user):
    conversation = waiting(name="Ana", waited=timedelta(hours=5))
    answer = OutboundMessageFactory(
        conversation=conversation, purpose=Message.Purpose.STAFF_REPLY, text="Oi Ana, já vejo"
    )
    Message.objects.filter(pk=answer.pk).update(created_at=NOW - timedelta(hours=4))
    for minutes in (40, 25):
        message = InboundMessageFactory(conversation=conversation, text="E aí?", status="processed")
        Message.objects.filter(pk=message.pk).update(created_at=NOW - timedelta(minutes=minutes))

    row = support_client.get(INBOX).context["rows"][0]

    assert row["wait"] == "40 min"  # not 5 h: a person answered four hours ago


def test_every_admin_page_and_its_title_carry_the_waiting_count(support_client):
    for _ in range(3):
        waiting()

    for url in ("/admin/", "/admin/recovery/product/", "/admin/recovery/conversation/"):
        html = support_client.get(url).content.decode()
        assert '<strong id="desk-waiting">3</strong>' in html
        title = html[html.index("<title>") + 7 : html.index("</title>")]
        assert title.startswith("(3) ")
        assert "/static/sara/desk.js" in html


def test_the_count_the_pages_poll_names_the_newest_waiting_conversation(support_client, client):
    waiting()
    newest = waiting()

    data = support_client.get("/admin/recovery/conversation/inbox/waiting.json").json()

    assert data == {"waiting": 2, "newest": newest.pk}
    assert client.get("/admin/recovery/conversation/inbox/waiting.json").status_code == 302  # staff only


def test_the_page_hands_its_script_plain_numbers_past_a_thousand(support_client):
    # The page shows numbers the Brazilian way; read as "1.234", a newest id looks smaller than
    # every id polled later, and each poll would announce a customer who is not new.
    newest = waiting(id=123_456)

    html = support_client.get("/admin/recovery/conversation/inbox/").content.decode()

    bar = html[html.index('<div id="desk-bar"') :]
    bar = bar[: bar.index(">")]
    assert f'data-newest="{newest.pk}"' in bar
    assert 'data-waiting="1"' in bar
    assert support_client.get("/admin/recovery/conversation/inbox/waiting.json").json()["newest"] == 123_456


# --- A customer who writes again is never ignored --------------------------------------------


def test_a_customer_who_writes_after_resolve_is_back_in_the_inbox_and_sara_stays_silent(
    support_client, support_user, say, outbox
):
    conversation = waiting(
        abandonment__customer=CustomerFactory(phone="+5548999327881", name="Maria"), status="active"
    )
    step(support_client, conversation, "resolve")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED

    message = say("Oi, voltei: ainda tenho uma dúvida sobre o certificado")

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.needs_human
    assert conversation.handoff_reason == Conversation.HandoffReason.CUSTOMER_WROTE_AGAIN
    assert conversation.assigned_to is None
    message.refresh_from_db()
    assert message.conversation == conversation
    assert outbox == []  # no sales pitch from Sara
    html = support_client.get(INBOX).content.decode()
    assert f'id="inbox-{conversation.pk}"' in html
    assert "Customer wrote again" in html


def test_a_customer_who_writes_after_a_resolve_with_a_reason_is_back_too_but_not_after_a_payment(
    support_client, say, outbox
):
    conversation = waiting(abandonment__customer=CustomerFactory(phone="+5548999327881", name="Maria"))
    support_client.post(
        f"/admin/recovery/conversation/{conversation.pk}/close/", {"reason": "pagou por telefone"}
    )

    say("Oi, só confirmando que deu certo")

    conversation.refresh_from_db()
    assert (conversation.status, conversation.handoff_reason) == (
        Conversation.Status.ACTIVE,
        Conversation.HandoffReason.CUSTOMER_WROTE_AGAIN,
    )
    assert outbox == []


def test_a_customer_who_writes_after_paying_is_not_put_back_in_the_inbox(say):
    conversation = waiting(
        abandonment__customer=CustomerFactory(phone="+5548999327881", name="Maria"),
        status=Conversation.Status.CLOSED,
        close_reason=Conversation.CloseReason.CONVERTED,
        needs_human=False,
    )

    say("Obrigada!")

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED


def test_staff_reopen_a_resolved_conversation(support_client, support_user):
    conversation = waiting(name="Ana")
    step(support_client, conversation, "resolve")
    assert 'id="handoff-reopen"' in page_of(support_client, conversation)

    response = step(support_client, conversation, "reopen")

    assert "Reopened" in flash(response)[0]
    conversation.refresh_from_db()
    assert (conversation.status, conversation.needs_human, conversation.assigned_to) == (
        Conversation.Status.ACTIVE,
        True,
        support_user,
    )


# --- The workspace -----------------------------------------------------------------------


def test_the_workspace_shows_the_cart_the_window_and_a_payment_mismatch_in_words(support_client):
    conversation = waiting(
        name="Ana",
        handoff_reason=Conversation.HandoffReason.PAYMENT_MISMATCH,
        abandonment__value=Decimal("297.00"),
        abandonment__external_id="ab-777",
        last_user_message_at=NOW - timedelta(hours=2),
    )
    WebhookEvent.objects.create(
        type=WebhookEvent.Type.PAYMENT,
        external_id="pay-555",
        reference="ab-777",
        payload={"abandonmentId": "ab-777", "paymentId": "pay-555", "amount": 150, "linkType": "original"},
        error="Amount does not match the cart.",
    )

    html = page_of(support_client, conversation)

    assert "R$ 297,00" in html
    assert "https://pay.example.com/cart/123" in html
    assert "10% · R$ 267,30" in html  # the product's discount and the discounted value
    assert "Open until 25/11 10:00" in html  # 24 h after the customer wrote, São Paulo time
    mismatch = html[html.index('id="side-mismatch"') :]
    assert (
        "The customer paid R$ 150,00 through the original link, but this cart expects R$ 297,00" in mismatch
    )
    assert "Payment id: pay-555" in mismatch


def test_resolve_and_next_opens_the_next_waiting_conversation(support_client):
    first = waiting(name="Ana", waited=timedelta(hours=2))
    second = waiting(name="Bruno", waited=timedelta(hours=1))

    response = step(support_client, first, "resolve_next")

    assert response.redirect_chain[-1][0] == f"/admin/recovery/conversation/{second.pk}/change/"
    first.refresh_from_db()
    assert first.close_reason == Conversation.CloseReason.RESOLVED


# --- Team features -----------------------------------------------------------------------


def test_a_private_note_shows_in_the_transcript_and_never_reaches_graph(
    support_client, graph, django_capture_on_commit_callbacks
):
    conversation = waiting(name="Ana")

    with django_capture_on_commit_callbacks(execute=True):
        response = step(support_client, conversation, "note", text="Cliente VIP: ligar amanhã às 10h")

    assert "Private note saved" in flash(response)[0]
    assert len(graph.calls) == 0
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()
    html = page_of(support_client, conversation)
    note = PrivateNote.objects.get()
    assert f'id="note-{note.pk}"' in html
    assert "Cliente VIP: ligar amanhã às 10h" in html
    assert "never sent to the customer" in html


def test_a_conversation_is_assigned_to_a_colleague(support_client, ops_user):
    conversation = waiting(name="Ana")

    response = step(support_client, conversation, "assign", assignee=str(ops_user.pk))

    assert "Assigned to operacao." in flash(response)[0]
    conversation.refresh_from_db()
    assert conversation.assigned_to == ops_user
    html = support_client.get(INBOX + "?assigned=none").content.decode()
    assert f'id="inbox-{conversation.pk}"' not in html


def test_support_edits_canned_replies_and_the_reply_box_offers_them(support_client):
    response = support_client.post(
        "/admin/recovery/cannedreply/add/",
        {"title": "Prazo de entrega", "text": "O prazo aparece no checkout assim que você informa o CEP."},
    )
    assert response.status_code == 302
    assert CannedReply.objects.get().title == "Prazo de entrega"
    conversation = waiting(name="Ana")

    html = page_of(support_client, conversation)

    data = html[html.index('id="canned-replies"') :]
    assert "O prazo aparece no checkout" in data[: data.index("</script>")]


def test_unread_markers_belong_to_each_staff_member(support_client, ops_client):
    conversation = waiting(name="Ana")
    InboundMessageFactory(conversation=conversation, text="Oi?", status="processed")

    page_of(support_client, conversation)  # support read it
    InboundMessageFactory(conversation=conversation, text="Tem alguém aí?", status="processed")

    support_row = support_client.get(INBOX).context["rows"][0]["conversation"]
    ops_row = ops_client.get(INBOX).context["rows"][0]["conversation"]
    assert support_row.unread == 0  # the second message has the same frozen time as the read
    assert ops_row.unread == 2


def test_unread_counts_what_arrived_after_the_last_look(support_client):
    conversation = waiting(name="Ana")
    with time_machine.travel(NOW - timedelta(minutes=5), tick=False):
        page_of(support_client, conversation)
    InboundMessageFactory(conversation=conversation, text="Oi de novo", status="processed")

    assert support_client.get(INBOX).context["rows"][0]["conversation"].unread == 1
    assert "1 new customer message since you last opened it" in page_of(support_client, conversation)


def test_search_finds_a_conversation_by_words_the_customer_wrote(support_client):
    found = waiting(name="Ana")
    other = waiting(name="Bruno")
    InboundMessageFactory(conversation=found, text="Vocês emitem certificados do curso?", status="processed")
    InboundMessageFactory(conversation=other, text="Qual o prazo de entrega?", status="processed")

    # On PostgreSQL, Portuguese stemming: "certificado" finds "certificados".
    words = "certificado" if ON_POSTGRES else "certificados"
    rows = support_client.get(INBOX, {"q": words}).context["rows"]

    assert [row["conversation"] for row in rows] == [found]
    listed = support_client.get("/admin/recovery/conversation/", {"q": words}).context["cl"].result_list
    assert list(listed) == [found]


# --- The reply box tells the truth ---------------------------------------------------------


def test_a_reply_with_a_foreign_link_an_amount_and_a_coupon_is_stopped_and_says_why(
    support_client, outbox, django_capture_on_commit_callbacks
):
    conversation = waiting(name="Ana")
    text = "Paga aqui: https://golpe.example.net/pix. Fica R$ 250,00. Use o cupom JOAO50."

    with django_capture_on_commit_callbacks(execute=True):
        response = step(support_client, conversation, "reply", text=text)

    assert response.status_code == 422
    html = response.content.decode()
    assert "link that is not the shop&#x27;s: https://golpe.example.net/pix" in html
    assert "amount that is not the cart&#x27;s: R$ 250,00" in html
    assert "coupon code the shop did not configure: JOAO50" in html
    assert outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        response = step(support_client, conversation, "reply", text=text, exception="1")

    assert "Reply queued" in flash(response)[0]
    (_, sent), *_ = outbox
    assert sent.text == text
    message = Message.objects.get(direction=Message.Direction.OUT)
    assert message.metadata["guardrail_exception"] == ["url", "amount", "coupon"]


def test_a_reply_with_the_carts_own_links_and_figures_goes_out_unchecked(
    support_client, outbox, django_capture_on_commit_callbacks
):
    conversation = waiting(name="Ana")
    text = (
        "Oi Ana! O total é R$ 297,00: https://pay.example.com/cart/123 ou com 10% de desconto, "
        "R$ 267,30: https://pay.example.com/curso-python?cupom=VOLTA10"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = step(support_client, conversation, "reply", text=text)

    assert "Reply queued" in flash(response)[0]
    assert len(outbox) == 1


def test_the_reply_box_says_the_customer_sees_the_shop_not_the_staff_members_name(support_client):
    html = page_of(support_client, waiting(name="Ana"))
    assert "the customer sees the business, not your name" in html
    assert "under your name" not in html


@pytest.fixture
def token():
    user = get_user_model().objects.create_user("atendente", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    return Token.objects.create(user=user).key


def test_the_api_refuses_a_reply_that_breaks_a_guardrail_with_422_naming_it(client, token, outbox):
    conversation = waiting(name="Ana")
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    body = {"text": "Use o cupom JOAO50 e pague em https://golpe.example.net"}

    response = client.post(
        f"/conversations/{conversation.pk}/reply", body, content_type="application/json", **headers
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "GUARDRAIL"
    assert {b["rule"] for b in error["details"]["breaches"]} == {"coupon", "url"}
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()

    confirmed = client.post(
        f"/conversations/{conversation.pk}/reply",
        json.dumps({**body, "confirmException": True}),
        content_type="application/json",
        **headers,
    )
    assert confirmed.status_code == 202


def test_one_word_for_ending_a_conversation_resolver(support_client, settings):
    settings.LANGUAGE_CODE = "pt-br"
    conversation = waiting(name="Ana")

    html = page_of(support_client, conversation)
    changelist = support_client.get("/admin/recovery/conversation/").content.decode()
    close_page = support_client.get(f"/admin/recovery/conversation/{conversation.pk}/close/").content.decode()
    done = support_client.post(
        f"/admin/recovery/conversation/{conversation.pk}/close/",
        {"reason": "pagou por telefone"},
        follow=True,
    )

    for page in (html, changelist, close_page):
        # "Encerrar sessão" is logging out, not a conversation's end.
        assert not re.search(r"Encerrar(?! sessão)|Fechar", page)
    assert "Resolver e próxima" in html and "Resolver com um motivo…" in html
    assert "Resolver as conversas selecionadas…" in changelist
    assert 'value="Resolver"' in close_page
    assert flash(done) == [f"Conversa {conversation.pk} resolvida: pagou por telefone."]
