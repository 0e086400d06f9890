"""A changelist page of 100 rows costs a fixed handful of queries, not one per row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging.models import Message, StatusUpdate, WebhookEvent
from recovery.desk import INBOX_PAGE_SIZE
from recovery.models import Conversation, Customer
from tests import factories

pytestmark = pytest.mark.django_db

ROWS = 100
# Session, user, two counts, a filter's choices, the page itself: never a query per row.
MAX_QUERIES = 8
# A conversation's page is a workspace: beside the transcript, the cart and its product, the
# staff member's read marker (read, count, write), the colleagues to assign to, the canned
# replies, the private notes and the waiting count in the header. A fixed dozen, none per message.
WORKSPACE_QUERIES = 12


def conversations(n: int) -> list[Conversation]:
    product = factories.ProductFactory()
    return [
        factories.ConversationFactory(abandonment=factories.AbandonmentFactory(product=product))
        for _ in range(n)
    ]


def one_hundred_customers() -> None:
    for conversation in conversations(ROWS):
        factories.AbandonmentFactory(customer=conversation.customer, product=conversation.abandonment.product)


def one_hundred_messages() -> None:
    """Half failed sends, half inbound messages stuck since an hour ago."""
    for i, conversation in enumerate(conversations(ROWS // 2)):
        factories.OutboundMessageFactory(
            conversation=conversation, status=Message.Status.FAILED, error_code=f"13{i % 5}"
        )
        factories.InboundMessageFactory(conversation=conversation)
    Message.objects.update(created_at=timezone.now() - timedelta(hours=1))


def one_hundred_events() -> None:
    WebhookEvent.objects.bulk_create(
        WebhookEvent(type=WebhookEvent.Type.WHATSAPP, external_id=f"e{i}", payload={"n": i})
        for i in range(ROWS)
    )


def one_hundred_status_updates() -> None:
    StatusUpdate.objects.bulk_create(
        StatusUpdate(whatsapp_message_id=f"w{i}", status="read") for i in range(ROWS)
    )


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/admin/recovery/customer/", one_hundred_customers),
        ("/admin/recovery/customer/?q=%2B55+48+9", one_hundred_customers),
        ("/admin/recovery/product/", lambda: factories.ProductFactory.create_batch(ROWS)),
        ("/admin/recovery/abandonment/", lambda: conversations(ROWS)),
        ("/admin/recovery/conversation/", lambda: conversations(ROWS)),
        ("/admin/messaging/message/", one_hundred_messages),
        ("/admin/messaging/message/?ops=failed", one_hundred_messages),
        ("/admin/messaging/message/?ops=stuck", one_hundred_messages),
        ("/admin/messaging/webhookevent/", one_hundred_events),
        ("/admin/messaging/statusupdate/", one_hundred_status_updates),
        ("/admin/compliance/optoutkeyword/", lambda: None),
    ],
)
def test_a_changelist_page_of_100_rows_costs_a_constant_number_of_queries(
    admin_client, django_assert_max_num_queries, url, make
):
    make()

    with django_assert_max_num_queries(MAX_QUERIES):
        response = admin_client.get(url)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= (10 if "optoutkeyword" in url else 1)


def test_the_customer_list_costs_the_same_for_one_row_as_for_100(admin_client):
    factories.CustomerFactory()

    with CaptureQueriesContext(connection) as one:
        admin_client.get("/admin/recovery/customer/")
    one_hundred_customers()
    with CaptureQueriesContext(connection) as many:
        admin_client.get("/admin/recovery/customer/")

    assert Customer.objects.count() == ROWS + 1
    assert len(many) == len(one)


def test_a_transcript_of_100_messages_costs_a_constant_number_of_queries(
    admin_client, django_assert_max_num_queries
):
    conversation = factories.ConversationFactory()
    for _ in range(ROWS // 2):
        factories.InboundMessageFactory(conversation=conversation)
        factories.OutboundMessageFactory(conversation=conversation)

    with django_assert_max_num_queries(MAX_QUERIES + WORKSPACE_QUERIES):
        response = admin_client.get(f"/admin/recovery/conversation/{conversation.pk}/change/")

    assert response.content.decode().count('class="sara-bubble ') == ROWS


def test_the_handoff_inbox_of_100_conversations_costs_a_constant_number_of_queries(
    admin_client, admin_user, django_assert_max_num_queries
):
    for i, conversation in enumerate(conversations(ROWS)):
        factories.InboundMessageFactory(conversation=conversation, text=f"Quero falar com alguém ({i})")
    Conversation.objects.update(
        needs_human=True, handoff_reason=Conversation.HandoffReason.ASKED_FOR_PERSON, assigned_to=admin_user
    )

    for url in ("/admin/recovery/conversation/inbox/", "/admin/recovery/conversation/inbox/rows/"):
        with django_assert_max_num_queries(MAX_QUERIES):
            response = admin_client.get(url)
        assert len(response.context["rows"]) == INBOX_PAGE_SIZE  # the first page of the 100
        assert response.context["total_waiting"] == ROWS
