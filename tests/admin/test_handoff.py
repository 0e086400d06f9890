"""The hand-off in the admin: the inbox, and take, reply, resolve, give back and flag (SPEC §8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry

from messaging.models import Message
from recovery.models import Conversation
from tests.admin.conftest import INBOX, NOW, flash, waiting_for_person
from tests.admin.conftest import handoff_step as step
from tests.factories import ConversationFactory, CustomerFactory, InboundMessageFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english_at_now")]


def waiting(
    *, name: str, reason: str, waited: timedelta, text: str = "Quero falar com alguém", **fields
) -> Conversation:
    conversation = waiting_for_person(name=name, reason=reason, waited=waited, **fields)
    InboundMessageFactory(conversation=conversation, text=text, status=Message.Status.PROCESSED)
    return conversation


# --- The inbox -------------------------------------------------------------------------------


def test_the_inbox_lists_who_waits_for_a_person_longest_wait_first(support_client):
    recent = waiting(name="Ana", reason="human", waited=timedelta(minutes=8))
    oldest = waiting(
        name="Bruno", reason="exchange_limit", waited=timedelta(hours=3, minutes=5), text="E o frete?"
    )
    middle = waiting(name="Carla", reason="payment_mismatch", waited=timedelta(hours=1))
    ConversationFactory(status=Conversation.Status.ACTIVE)  # Sara is answering this one
    waiting(name="Davi", reason="manual", waited=timedelta(days=2), status=Conversation.Status.CLOSED)

    response = support_client.get(INBOX)

    assert response.status_code == 200
    rows = [row["conversation"] for row in response.context["rows"]]
    assert rows == [oldest, middle, recent]
    html = response.content.decode()
    assert html.index(f'id="inbox-{oldest.pk}"') < html.index(f'id="inbox-{recent.pk}"')
    first = response.context["rows"][0]
    assert first["wait"] == "3 h 05 min"
    assert first["reason"] == Conversation.HandoffReason.EXCHANGE_LIMIT.label
    assert "E o frete?" in html
    assert "/static/sara/inbox.js" in html  # served by the project, no CDN


def test_the_inbox_rows_refresh_alone_and_show_a_newcomer(support_client):
    response = support_client.get(INBOX + "rows/")
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert response.context["rows"] == []

    newcomer = waiting(name="Ana", reason="human", waited=timedelta(minutes=1))

    response = support_client.get(INBOX + "rows/")
    assert [row["conversation"] for row in response.context["rows"]] == [newcomer]
    assert f'id="inbox-{newcomer.pk}"' in response.content.decode()


def test_the_inbox_filters_what_is_not_taken_and_what_is_mine(support_client, support_user, ops_user):
    mine = waiting(name="Ana", reason="human", waited=timedelta(hours=1), assigned_to=support_user)
    theirs = waiting(name="Bruno", reason="human", waited=timedelta(hours=2), assigned_to=ops_user)
    free = waiting(name="Carla", reason="human", waited=timedelta(hours=3))

    def shown(query: str) -> list[Conversation]:
        return [row["conversation"] for row in support_client.get(INBOX + query).context["rows"]]

    assert shown("") == [free, theirs, mine]
    assert shown("?assigned=none") == [free]
    assert shown("?assigned=me") == [mine]
    assert shown("rows/?assigned=me") == [mine]


def test_the_dashboard_counts_who_waits_and_the_oldest_wait(support_client):
    waiting(name="Ana", reason="human", waited=timedelta(minutes=20))
    waiting(name="Bruno", reason="exchange_limit", waited=timedelta(days=1, hours=2))

    response = support_client.get("/admin/")

    assert response.context["dashboard"].waiting_for_person == 2
    html = response.content.decode()
    assert '<strong id="waiting-count">2</strong>' in html
    assert '<strong id="oldest-wait">1 d 2 h</strong>' in html


def test_the_inbox_needs_a_staff_login(client):
    response = client.get(INBOX)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- Take, reply, resolve, give back, flag ---------------------------------------------------


def test_support_takes_a_conversation_and_the_history_records_it(support_client, support_user):
    conversation = waiting(name="Ana", reason="human", waited=timedelta(minutes=30))

    response = step(support_client, conversation, "take")

    assert response.status_code == 200
    assert "Taken by suporte" in flash(response)[0]
    conversation.refresh_from_db()
    assert conversation.assigned_to == support_user
    assert conversation.assigned_at == NOW
    assert conversation.needs_human is True
    assert conversation.handoff_at == NOW - timedelta(minutes=30)  # the customer's wait is kept
    assert LogEntry.objects.filter(object_id=str(conversation.pk), user=support_user).count() == 1


def test_a_colleague_takes_over_a_conversation_already_taken_only_once_confirmed(
    ops_client, ops_user, support_user
):
    conversation = waiting(
        name="Ana", reason="human", waited=timedelta(hours=2), assigned_to=support_user, assigned_at=NOW
    )
    page = ops_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()
    assert "taken by suporte" in page
    assert 'id="handoff-take"' in page
    assert "suporte holds this conversation. Take it over?" in page  # the browser asks first

    refused = step(ops_client, conversation, "take")

    assert "A colleague holds this conversation: confirm to take it over." in flash(refused)
    conversation.refresh_from_db()
    assert conversation.assigned_to == support_user

    step(ops_client, conversation, "take", confirmed="1")

    conversation.refresh_from_db()
    assert conversation.assigned_to == ops_user
    assert LogEntry.objects.filter(object_id=str(conversation.pk), user=ops_user).exists()


def test_a_reply_goes_out_under_the_staff_members_name(
    support_client, support_user, outbox, django_capture_on_commit_callbacks
):
    conversation = waiting(name="Ana", reason="human", waited=timedelta(minutes=30))

    with django_capture_on_commit_callbacks(execute=True):
        response = step(support_client, conversation, "reply", text="Oi Ana, aqui é a Júlia do suporte.")

    assert "Reply queued" in flash(response)[0]
    reply = conversation.messages.get(purpose=Message.Purpose.STAFF_REPLY)
    assert reply.sent_by == support_user
    assert reply.status == Message.Status.SENT
    assert [m.text for _, m in outbox] == ["Oi Ana, aqui é a Júlia do suporte."]
    conversation.refresh_from_db()
    assert conversation.assigned_to == support_user  # replying takes the conversation
    page = support_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()
    assert '<span class="sara-staff">suporte</span>' in page
    assert LogEntry.objects.filter(object_id=str(conversation.pk), user=support_user).exists()


def test_an_empty_reply_is_refused_and_nothing_is_sent(support_client, outbox):
    conversation = waiting(name="Ana", reason="human", waited=timedelta(minutes=30))

    response = step(support_client, conversation, "reply", text="")

    assert "Reply not sent" in flash(response)[0]
    assert not conversation.messages.filter(direction=Message.Direction.OUT).exists()
    assert outbox == []


def test_outside_the_window_the_box_says_so_and_offers_the_followup_template(
    support_client, outbox, django_capture_on_commit_callbacks
):
    conversation = waiting(name="Ana", reason="exchange_limit", waited=timedelta(hours=30))
    page_url = f"/admin/recovery/conversation/{conversation.pk}/change/"

    page = support_client.get(page_url).content.decode()
    assert 'id="window-closed"' in page
    assert "more than 24 hours ago" in page
    assert 'id="reply-form"' not in page

    refused = step(support_client, conversation, "reply", text="Oi Ana")
    assert "24 hours" in flash(refused)[0]
    assert outbox == []

    # First the text the customer would read, and nothing sent.
    key = 'name="key" value="'
    form_key = page[page.index(key) + len(key) :].split('"', 1)[0]
    preview = step(support_client, conversation, "template", key=form_key)
    assert preview.status_code == 200
    assert "Oi, Ana! Curso de Python ainda está reservado para você." in preview.content.decode()
    assert outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        response = step(support_client, conversation, "template", key=form_key, confirmed="1")
    assert "Follow-up template queued" in flash(response)[0]
    (_, sent), *_ = outbox
    assert sent.template_name == "recovery_followup"
    assert sent.template_parameters == ["Ana", "Curso de Python"]

    # The same form posted again (a double click that got through): nothing more goes out.
    with django_capture_on_commit_callbacks(execute=True):
        again = step(support_client, conversation, "template", key=form_key, confirmed="1")
    assert "already sent" in flash(again)[0]
    assert len(outbox) == 1
    assert conversation.messages.filter(direction=Message.Direction.OUT).count() == 1


def test_a_customer_who_never_wrote_is_told_apart_from_one_who_wrote_long_ago(support_client):
    conversation = ConversationFactory()

    page = support_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/").content.decode()

    assert "The customer has never written" in page


def test_resolving_closes_the_conversation_and_empties_the_inbox(support_client, support_user):
    conversation = waiting(name="Ana", reason="human", waited=timedelta(minutes=30))

    response = step(support_client, conversation, "resolve")

    assert "Resolved" in flash(response)[0]
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
    assert conversation.close_reason == Conversation.CloseReason.RESOLVED
    assert conversation.closed_at == NOW
    assert conversation.assigned_to == support_user
    assert support_client.get(INBOX).context["rows"] == []
    assert LogEntry.objects.filter(object_id=str(conversation.pk), user=support_user).exists()


def test_giving_back_lets_sara_answer_again(support_client, support_user, say, outbox):
    conversation = waiting(
        name="Maria",
        reason="exchange_limit",
        waited=timedelta(minutes=30),
        exchanges=5,
        assigned_to=support_user,
    )
    conversation.customer.phone = "+5548999327881"
    conversation.customer.save()

    say("E o boleto, vence quando?")
    assert outbox == []  # a person owns it: Sara is silent

    response = step(support_client, conversation, "handback")

    assert "Given back to Sara" in flash(response)[0]
    conversation.refresh_from_db()
    assert (conversation.needs_human, conversation.assigned_to, conversation.handoff_reason) == (
        False,
        None,
        "",
    )
    say("Quanto fica no pix?")
    assert len(outbox) == 1
    assert LogEntry.objects.filter(object_id=str(conversation.pk), user=support_user).exists()


def test_flagging_by_hand_puts_the_conversation_in_the_inbox_and_silences_sara(support_client, say, outbox):
    conversation = ConversationFactory(
        abandonment__customer=CustomerFactory(phone="+5548999327881"),
        status=Conversation.Status.ACTIVE,
        last_user_message_at=NOW - timedelta(minutes=5),
    )

    response = step(support_client, conversation, "flag")

    assert "Flagged for a person" in flash(response)[0]
    conversation.refresh_from_db()
    assert conversation.needs_human is True
    assert conversation.handoff_reason == Conversation.HandoffReason.MANUAL
    assert conversation.handoff_at == NOW
    rows = support_client.get(INBOX).context["rows"]
    assert [(r["conversation"], r["reason"]) for r in rows] == [(conversation, "Flagged by hand")]
    say("Alguém aí?")
    assert outbox == []


def test_a_closed_conversation_cannot_be_taken(support_client):
    conversation = ConversationFactory(status=Conversation.Status.CLOSED)

    response = step(support_client, conversation, "take")

    assert "closed" in flash(response)[0]
    conversation.refresh_from_db()
    assert conversation.assigned_to is None


def test_a_step_is_a_post_and_an_unknown_step_is_refused(support_client):
    conversation = waiting(name="Ana", reason="human", waited=timedelta(minutes=30))
    url = f"/admin/recovery/conversation/{conversation.pk}/handoff/"

    assert support_client.get(url + "take/").status_code == 405
    assert support_client.post(url + "erase/").status_code == 403
    assert support_client.post("/admin/recovery/conversation/abc/handoff/take/").status_code == 404
    conversation.refresh_from_db()
    assert conversation.assigned_to is None
