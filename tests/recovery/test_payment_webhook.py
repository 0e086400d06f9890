"""POST /webhook/payment (SPEC §4.4): only a paid, matching payment converts a cart, once."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from core.http import signature_of
from messaging.models import Message, Template, WebhookEvent
from messaging.tasks import sweep_stuck
from recovery.models import Abandonment, Conversation
from tests.conftest import GRAPH_URL, abandonment_body, assert_error, graph_ok, post_from_threads, text_body
from tests.factories import (
    AbandonmentFactory,
    ConversationFactory,
    CustomerFactory,
    ProductFactory,
    maria_cart,
)

URL = "/webhook/payment"
SECRET = "dev-payment-secret"
MiB = 1024 * 1024
NOW = datetime(2025, 11, 22, 15, 0, tzinfo=UTC)
THANK_YOU = (
    "Pagamento de R$ 99,95 confirmado! Muito obrigado pela compra, Maria. Qualquer dúvida, é só chamar."
)


def payment(**overrides):
    """A payment as the platform posts it; None removes a field."""
    body = {
        "abandonmentId": "ab-1001",
        "paymentId": "pay-1",
        "status": "paid",
        "amount": "99.95",
        "productId": "curso-python",
        "linkType": "original",
        "timestamp": "2025-11-22T15:00:00Z",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def assert_not_converted(abandonment, outbox):
    abandonment.refresh_from_db()
    assert abandonment.status == Abandonment.Status.INITIATED
    assert abandonment.payment_id is None
    assert abandonment.converted_at is None
    assert abandonment.conversation.status == Conversation.Status.AWAITING_RESPONSE
    assert not Message.objects.filter(purpose=Message.Purpose.THANK_YOU).exists()
    assert outbox == []


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def product(db):
    return ProductFactory(product_id="curso-python", discount_percent=Decimal("15"))


@pytest.fixture
def abandonment(product):
    """Maria's R$ 99,95 cart with a 15 % discount link, its first template already sent."""
    return maria_cart(external_id="ab-1001", product=product, value=Decimal("99.95"))


def customer_wrote(abandonment, *, ago):
    Conversation.objects.filter(abandonment=abandonment).update(
        status=Conversation.Status.ACTIVE, last_user_message_at=NOW - ago
    )


@pytest.fixture
def post(post_signed, django_capture_on_commit_callbacks):
    """A signed POST, running what it queues on commit (the thank-you send)."""

    def send(data, url=URL):
        with django_capture_on_commit_callbacks(execute=True):
            return post_signed(url, data)

    return send


# --- Signature and validation ------------------------------------------------------------------

BODY = json.dumps(payment()).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_HUB_SIGNATURE_256": ""},
        {"HTTP_X_HUB_SIGNATURE_256": signature_of("not-the-secret", BODY)},
        {"HTTP_X_HUB_SIGNATURE_256": signature_of("dev-app-secret", BODY)},  # Meta's key, not ours
        {"HTTP_X_HUB_SIGNATURE_256": signature_of(SECRET, BODY.replace(b"99.95", b"0.01"))},
    ],
    ids=["missing", "empty", "wrong-secret", "meta-secret", "other-body"],
)
def test_a_missing_or_bad_signature_is_refused_and_nothing_converts(client, abandonment, outbox, headers):
    response = client.post(URL, BODY, content_type="application/json", **headers)

    assert_error(response, 403, "HMAC_VERIFICATION_FAILED")
    assert WebhookEvent.objects.count() == 0
    assert_not_converted(abandonment, outbox)


def test_a_signature_over_a_non_ascii_body_verifies(post, abandonment, frozen):
    body = json.dumps(payment(paymentId="pagamento-ção-😀"), ensure_ascii=False).encode()

    response = post(body)

    assert response.status_code == 200, response.content
    abandonment.refresh_from_db()
    assert abandonment.payment_id == "pagamento-ção-😀"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"abandonmentId": None}, "abandonmentId"),
        ({"paymentId": None}, "paymentId"),
        ({"amount": None}, "amount"),
        ({"abandonmentId": ""}, "abandonmentId"),
        ({"paymentId": ""}, "paymentId"),
        ({"amount": 0}, "amount"),
        ({"amount": "-99.95"}, "amount"),
        ({"amount": "99.950001"}, "amount"),
        ({"amount": 99.951}, "amount"),
        ({"amount": "noventa"}, "amount"),
        ({"amount": "99,95"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": None, "value": "99.95"}, "amount"),
        ({"linkType": "coupon"}, "linkType"),
    ],
)
def test_an_invalid_paid_payment_is_a_validation_error_naming_the_field(
    post, abandonment, outbox, overrides, field
):
    details = assert_error(post(payment(**overrides)), 400, "VALIDATION_ERROR")

    assert field in details
    assert_not_converted(abandonment, outbox)


@pytest.mark.parametrize(
    "body",
    [b"", b"paid", b'[{"status": "paid"}]', b'"paid"', b'{"status": "paid", "paymentId": "\xe7"}'],
    ids=["empty", "text", "array", "string", "invalid-utf-8"],
)
def test_a_body_that_is_not_a_json_object_is_a_validation_error_about_the_body(
    post, abandonment, outbox, body
):
    details = assert_error(post(body), 400, "VALIDATION_ERROR")

    assert "body" in details
    assert_not_converted(abandonment, outbox)


def test_a_body_over_one_mebibyte_is_refused_as_too_large(post, abandonment, outbox):
    body = json.dumps(payment()).encode()
    body += b" " * (MiB + 1 - len(body))

    assert_error(post(body), 413, "PAYLOAD_TOO_LARGE")
    assert WebhookEvent.objects.count() == 0
    assert_not_converted(abandonment, outbox)


# --- Not paid ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "refused", "refunded", "chargeback", "", None])
@pytest.mark.parametrize(
    "overrides",
    [{}, {"abandonmentId": "ab-never-seen"}, {"amount": "abc"}, {"amount": "-1.999"}, {"amount": None}],
    ids=["known-cart", "unknown-cart", "garbage-amount", "bad-amount", "no-amount"],
)
def test_a_payment_that_is_not_paid_is_ignored_whatever_else_it_says(
    post, abandonment, outbox, status, overrides
):
    response = post(payment(status=status, **overrides))

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ignored"}
    assert_not_converted(abandonment, outbox)


# --- Converting --------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["99.95", 99.95, "99.950"], ids=["string", "number", "trailing-zero"])
def test_paying_the_original_amount_converts_the_cart_and_thanks_the_customer(
    post, abandonment, outbox, frozen, amount
):
    customer_wrote(abandonment, ago=timedelta(hours=2))

    response = post(payment(amount=amount))

    conversation = abandonment.conversation
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "converted",
        "conversationId": conversation.pk,
        "abandonmentId": "ab-1001",
    }
    abandonment.refresh_from_db()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.payment_id == "pay-1"
    assert abandonment.conversion_link == "original"
    assert abandonment.converted_at == NOW
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.CLOSED
    assert conversation.close_reason == "converted"
    thanks = Message.objects.get(purpose=Message.Purpose.THANK_YOU)
    assert (thanks.status, thanks.text) == ("sent", THANK_YOU)
    assert [(sent.to, sent.text) for _, sent in outbox] == [("+5548999327881", THANK_YOU)]
    event = WebhookEvent.objects.get(type="payment", external_id="pay-1")
    assert event.processed
    assert event.error == ""


def test_the_thank_you_goes_to_graph_as_exact_json(post, abandonment, graph, frozen):
    customer_wrote(abandonment, ago=timedelta(minutes=5))
    graph.post(GRAPH_URL, json=graph_ok("wamid.thank-you"))

    response = post(payment())

    assert response.json()["status"] == "converted"
    assert len(graph.calls) == 1
    assert json.loads(graph.calls[0].request.body) == text_body("+5548999327881", THANK_YOU)
    assert Message.objects.get(purpose=Message.Purpose.THANK_YOU).whatsapp_message_id == "wamid.thank-you"


@pytest.mark.parametrize("last_wrote", [None, timedelta(hours=24), timedelta(days=3)])
def test_a_thank_you_outside_the_24_hour_window_fails_without_reaching_whatsapp(
    post, abandonment, outbox, frozen, last_wrote
):
    if last_wrote is not None:
        customer_wrote(abandonment, ago=last_wrote)

    response = post(payment())

    assert response.json()["status"] == "converted"
    abandonment.refresh_from_db()
    assert abandonment.status == Abandonment.Status.CONVERTED
    thanks = Message.objects.get(purpose=Message.Purpose.THANK_YOU)
    assert (thanks.status, thanks.error_code) == ("failed", "window_closed")
    assert outbox == []


def thank_you_template(**fields):
    """What Meta said of the thank-you template (its webhook or sync_templates wrote the row)."""
    defaults = {"category": Template.Category.UTILITY, "status": Template.Status.APPROVED, **fields}
    Template.objects.update_or_create(name="recovery_thank_you", language="pt_BR", defaults=defaults)


@pytest.mark.parametrize(
    "last_wrote", [timedelta(minutes=5), None, timedelta(days=3)], ids=["inside", "never-wrote", "closed"]
)
def test_once_meta_approved_the_utility_thank_you_it_goes_as_that_template_window_or_not(
    post, abandonment, graph, frozen, last_wrote
):
    thank_you_template()
    if last_wrote is not None:
        customer_wrote(abandonment, ago=last_wrote)
    graph.post(GRAPH_URL, json=graph_ok("wamid.thank-you"))

    assert post(payment()).json()["status"] == "converted"

    assert json.loads(graph.calls[0].request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+5548999327881",
        "type": "template",
        "template": {
            "name": "recovery_thank_you",
            "language": {"code": "pt_BR"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": "Maria"}, {"type": "text", "text": "R$ 99,95"}],
                }
            ],
        },
    }
    thanks = Message.objects.get(purpose=Message.Purpose.THANK_YOU)
    assert (thanks.status, thanks.kind, thanks.whatsapp_message_id) == ("sent", "template", "wamid.thank-you")


# Meta has not approved it as utility: no row, still in review, paused, or filed as marketing.
NOT_APPROVED_AS_UTILITY = [
    None,
    {"status": Template.Status.PENDING},
    {"status": Template.Status.PAUSED},
    {"category": Template.Category.MARKETING},
]
each_template_not_approved_as_utility = pytest.mark.parametrize(
    "template", NOT_APPROVED_AS_UTILITY, ids=["no-row", "pending", "paused", "marketing"]
)


@each_template_not_approved_as_utility
def test_before_meta_approves_the_utility_thank_you_it_goes_as_text_inside_the_window(
    post, abandonment, graph, frozen, template
):
    if template is not None:
        thank_you_template(**template)
    customer_wrote(abandonment, ago=timedelta(hours=23))
    graph.post(GRAPH_URL, json=graph_ok("wamid.thank-you"))

    post(payment())

    body = json.loads(graph.calls[0].request.body)
    assert (body["type"], body["text"]["body"]) == ("text", THANK_YOU)
    assert Message.objects.get(purpose=Message.Purpose.THANK_YOU).status == "sent"


@each_template_not_approved_as_utility
def test_before_meta_approves_the_utility_thank_you_no_free_text_leaves_outside_the_window(
    post, abandonment, graph, frozen, template
):
    if template is not None:
        thank_you_template(**template)
    customer_wrote(abandonment, ago=timedelta(hours=24, seconds=1))

    assert post(payment()).json()["status"] == "converted"

    assert len(graph.calls) == 0
    thanks = Message.objects.get(purpose=Message.Purpose.THANK_YOU)
    assert (thanks.status, thanks.error_code) == ("failed", "window_closed")


def test_an_opted_out_customer_who_pays_is_converted_and_not_messaged(post, abandonment, outbox, frozen):
    customer_wrote(abandonment, ago=timedelta(hours=1))
    abandonment.customer.opted_out = True
    abandonment.customer.save()

    response = post(payment())

    assert response.json()["status"] == "converted"
    abandonment.refresh_from_db()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert outbox == []


@pytest.mark.parametrize(
    ("value", "percent", "amount"),
    [
        ("99.95", "15", "84.96"),  # 84.9575
        ("10.05", "50", "5.03"),  # 5.025: half-up, where banker's rounding gives 5.02
        ("297.00", "10", "267.30"),
        ("0.01", "50", "0.01"),  # 0.005
    ],
)
def test_paying_the_discounted_amount_through_the_discount_link_converts(
    post, abandonment, outbox, frozen, value, percent, amount
):
    Abandonment.objects.filter(pk=abandonment.pk).update(value=Decimal(value))
    abandonment.product.discount_percent = Decimal(percent)
    abandonment.product.save()
    customer_wrote(abandonment, ago=timedelta(hours=1))

    response = post(payment(amount=amount, linkType="discounted"))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "converted"
    abandonment.refresh_from_db()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.conversion_link == "discounted"
    assert len(outbox) == 1


@pytest.mark.parametrize(
    ("amount", "link_type"),
    [
        ("99.94", "original"),
        ("99.96", "original"),
        ("84.96", "original"),  # the discounted price through the full-price link
        ("99.95", "discounted"),  # the full price through the discount link
        ("84.95", "discounted"),  # 84.9575 rounded down
    ],
)
def test_a_payment_of_the_wrong_amount_is_refused_and_kept_for_ops(
    post, abandonment, outbox, amount, link_type
):
    response = post(payment(amount=amount, linkType=link_type))

    details = assert_error(response, 422, "AMOUNT_MISMATCH")
    assert details["amount"] == amount
    event = WebhookEvent.objects.get(type="payment", external_id="pay-1")
    assert not event.processed
    assert event.error
    assert_not_converted(abandonment, outbox)


@pytest.mark.parametrize(
    "product_kwargs",
    [
        None,  # an unknown productId: the cart has no product at all
        {"discount_percent": Decimal("0")},
        {"discount_link": ""},
    ],
    ids=["no-product", "zero-percent", "no-discount-link"],
)
def test_a_discounted_payment_for_a_cart_without_a_discount_is_an_amount_mismatch(
    post, abandonment, outbox, product_kwargs
):
    if product_kwargs is None:
        Abandonment.objects.filter(pk=abandonment.pk).update(product=None)
    else:
        for field, value in product_kwargs.items():
            setattr(abandonment.product, field, value)
        abandonment.product.save()

    response = post(payment(amount="84.96", linkType="discounted"))

    assert_error(response, 422, "AMOUNT_MISMATCH")
    assert_not_converted(abandonment, outbox)


# --- Payments that arrive first ----------------------------------------------------------------


def test_a_payment_for_an_unknown_abandonment_is_not_found_and_kept(post, db, outbox):
    response = post(payment(abandonmentId="ab-later"))

    details = assert_error(response, 404, "ABANDONMENT_NOT_FOUND")
    assert "abandonmentId" in details
    event = WebhookEvent.objects.get(type="payment")
    assert (event.external_id, event.reference, event.processed) == ("pay-1", "ab-later", False)
    assert event.payload == payment(abandonmentId="ab-later")


@pytest.mark.parametrize(
    ("amount", "link_type", "product_percent"),
    [("99.95", "original", None), (99.95, None, None), ("84.96", "discounted", "15")],
    ids=["original", "number-no-link-type", "discounted"],
)
def test_an_abandonment_already_paid_is_converted_on_arrival_and_never_chased(
    post, db, outbox, frozen, amount, link_type, product_percent
):
    if product_percent:
        ProductFactory(product_id="curso-python", discount_percent=Decimal(product_percent))
    assert post(payment(amount=amount, linkType=link_type)).status_code == 404

    response = post(abandonment_body(value="99.95"), url="/webhook/abandonment")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "received"
    abandonment = Abandonment.objects.get()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert abandonment.payment_id == "pay-1"
    assert abandonment.conversion_link == (link_type or "original")
    assert abandonment.converted_at == NOW
    conversation = Conversation.objects.get(pk=response.json()["conversationId"])
    assert (conversation.status, conversation.close_reason) == ("closed", "converted")
    assert Message.objects.count() == 0
    assert outbox == []
    assert WebhookEvent.objects.get(type="payment").processed

    again = post(payment(amount=amount, linkType=link_type))

    assert again.status_code == 200
    assert again.json()["status"] == "already_processed"
    assert outbox == []


def test_an_earlier_paid_payment_of_another_amount_holds_the_cart_for_a_person_and_sends_nothing(
    post, db, outbox
):
    post(payment(amount="10.00"))

    response = post(abandonment_body(value="99.95"), url="/webhook/abandonment")

    assert response.json()["status"] == "received"
    assert Abandonment.objects.get().status == Abandonment.Status.INITIATED
    conversation = Conversation.objects.get(pk=response.json()["conversationId"])
    assert (conversation.needs_human, conversation.handoff_reason) == (True, "payment_mismatch")
    assert conversation.handoff_at is not None
    assert outbox == []
    assert not Message.objects.exists()


# --- Repeats -----------------------------------------------------------------------------------


def test_the_same_payment_again_is_already_processed_and_thanks_once(post, abandonment, outbox, frozen):
    customer_wrote(abandonment, ago=timedelta(hours=1))

    first = post(payment())
    again = [post(payment()), post(payment())]

    assert first.json()["status"] == "converted"
    for response in again:
        assert response.status_code == 200
        assert response.json() == {
            "status": "already_processed",
            "abandonmentId": "ab-1001",
            "conversationId": abandonment.conversation.pk,
        }
    assert len(outbox) == 1
    assert WebhookEvent.objects.filter(type="payment").count() == 1


def test_a_second_payment_for_a_converted_cart_is_kept_as_a_possible_double_payment(
    post, abandonment, outbox, frozen
):
    customer_wrote(abandonment, ago=timedelta(hours=1))
    post(payment(paymentId="pay-1"))

    response = post(payment(paymentId="pay-2"))

    assert response.status_code == 200
    assert response.json()["status"] == "already_converted"
    abandonment.refresh_from_db()
    assert abandonment.payment_id == "pay-1"
    second = WebhookEvent.objects.get(type="payment", external_id="pay-2")
    assert second.payload == payment(paymentId="pay-2")
    assert "double payment" in second.error
    assert len(outbox) == 1


def test_a_payment_id_already_used_for_another_cart_is_refused(post, abandonment, outbox, frozen):
    other = AbandonmentFactory(external_id="ab-2002", value=Decimal("99.95"))
    ConversationFactory(abandonment=other)
    assert post(payment(paymentId="pay-1")).json()["status"] == "converted"

    response = post(payment(paymentId="pay-1", abandonmentId="ab-2002"))

    assert "paymentId" in assert_error(response, 400, "VALIDATION_ERROR")
    other.refresh_from_db()
    assert other.status == Abandonment.Status.INITIATED
    assert other.payment_id is None
    assert WebhookEvent.objects.get(type="payment").reference == "ab-1001"


@pytest.mark.parametrize(
    ("payment_ids", "repeat_status"),
    [(["pay-1"] * 8, "already_processed"), ([f"pay-{n}" for n in range(8)], "already_converted")],
    ids=["same-payment", "different-payments"],
)
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_convert_once_and_thank_once(outbox, frozen, payment_ids, repeat_status):
    abandonment = AbandonmentFactory(
        external_id="ab-1001",
        customer=CustomerFactory(phone="+5548999327881", name="Maria Silva"),
        value=Decimal("99.95"),
    )
    ConversationFactory(
        abandonment=abandonment,
        status=Conversation.Status.ACTIVE,
        last_user_message_at=NOW - timedelta(hours=1),
    )

    responses = post_from_threads(URL, SECRET, [payment(paymentId=pid) for pid in payment_ids])

    assert [r.status_code for r in responses] == [200] * 8
    assert sorted(r.json()["status"] for r in responses) == sorted(["converted"] + [repeat_status] * 7)
    abandonment.refresh_from_db()
    assert abandonment.status == Abandonment.Status.CONVERTED
    assert Message.objects.filter(purpose=Message.Purpose.THANK_YOU).count() == 1
    assert [sent.text for _, sent in outbox] == [THANK_YOU]
    assert WebhookEvent.objects.filter(type="payment").count() == len(set(payment_ids))


# --- Paid before the first template left -------------------------------------------------------


def test_a_customer_who_pays_during_quiet_hours_never_gets_the_deferred_invitation(
    post, product, outbox, settings
):
    settings.SARA_QUIET_HOURS = "21:00-08:00"
    night = datetime(2025, 11, 22, 23, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    with time_machine.travel(night, tick=False):
        post(abandonment_body(value="99.95"), url="/webhook/abandonment")
        assert Message.objects.get().send_after is not None  # the invitation waits for 08:00
        assert post(payment()).json()["status"] == "converted"

    with time_machine.travel(night + timedelta(hours=9, minutes=5), tick=False):
        sweep_stuck.delay()

    assert outbox == []
