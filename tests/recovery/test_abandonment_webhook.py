"""POST /webhook/abandonment (SPEC §4.1): signed, validated, one recovery and one template per cart."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine

from core.http import signature_of
from messaging.models import Message, WebhookEvent
from messaging.tasks import sweep_stuck
from recovery.models import Abandonment, Conversation, Customer
from tests.conftest import (
    GRAPH_URL,
    abandonment_body,
    assert_error,
    graph_ok,
    post_from_threads,
    template_sent,
)
from tests.factories import ConversationFactory, CustomerFactory, ProductFactory

URL = "/webhook/abandonment"
SECRET = "dev-payment-secret"
MiB = 1024 * 1024


def cart(**overrides):
    """An abandonment as the checkout platform posts it; None removes a field."""
    return abandonment_body(**{"timestamp": "2025-11-22T10:00:00Z", **overrides})


def with_raw_value(raw: str) -> bytes:
    """The cart's JSON with `value` written exactly as given (a JSON number stays a number)."""
    return json.dumps(cart(value="__VALUE__")).replace('"__VALUE__"', raw).encode()


def assert_nothing_stored(outbox):
    assert Customer.objects.count() == 0
    assert Abandonment.objects.count() == 0
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0
    assert WebhookEvent.objects.count() == 0
    assert outbox == []


@pytest.fixture
def product(db):
    return ProductFactory(product_id="curso-python", name="Curso de Python")


@pytest.fixture
def post(post_signed, django_capture_on_commit_callbacks):
    """A signed POST to the webhook, running what it queues on commit (the template send)."""

    def send(data, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post_signed(URL, data, **kwargs)

    return send


# --- Signature ---------------------------------------------------------------------------------

BODY = json.dumps(cart()).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_HUB_SIGNATURE_256": ""},
        {"HTTP_X_HUB_SIGNATURE_256": "sha256="},
        {"HTTP_X_HUB_SIGNATURE_256": signature_of("not-the-secret", BODY)},
        {"HTTP_X_HUB_SIGNATURE_256": signature_of(SECRET, BODY + b" ")},
        {"HTTP_X_HUB_SIGNATURE_256": signature_of(SECRET, BODY).removeprefix("sha256=")},
        {"HTTP_X_HUB_SIGNATURE_256": signature_of(SECRET, BODY).replace("sha256=", "sha1=")},
    ],
    ids=["missing", "empty", "prefix-only", "wrong-secret", "other-body", "no-prefix", "sha1-prefix"],
)
@pytest.mark.django_db
def test_a_missing_or_bad_signature_is_refused_and_nothing_is_stored(client, outbox, headers):
    response = client.post(URL, BODY, content_type="application/json", **headers)

    assert_error(response, 403, "HMAC_VERIFICATION_FAILED")
    assert_nothing_stored(outbox)


@pytest.mark.django_db
def test_the_signature_is_checked_before_the_body_is_read_as_json(client, outbox):
    response = client.post(
        URL, b"{not json", content_type="application/json", HTTP_X_HUB_SIGNATURE_256="sha256=00"
    )

    assert_error(response, 403, "HMAC_VERIFICATION_FAILED")
    assert_nothing_stored(outbox)


@pytest.mark.django_db
def test_a_signature_over_a_non_ascii_body_verifies(post, product):
    name = "João Conceição Ñandú 😀"
    body = json.dumps(cart(name=name), ensure_ascii=False).encode()
    assert b"\xc3\xa3" in body  # the raw UTF-8 bytes are what was signed, not \u escapes

    response = post(body)

    assert response.status_code == 200, response.content
    assert Customer.objects.get().name == name


# --- Validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"userId": None}, "userId"),
        ({"name": None}, "name"),
        ({"phone": None}, "phone"),
        ({"productId": None}, "productId"),
        ({"paymentLink": None}, "paymentLink"),
        ({"abandonmentId": None}, "abandonmentId"),
        ({"value": None}, "value"),
        ({"phone": ""}, "phone"),
        ({"phone": "123"}, "phone"),
        ({"phone": "not a phone"}, "phone"),
        ({"phone": "+5500999327881"}, "phone"),
        ({"phone": "+55 48 9993"}, "phone"),
        ({"paymentLink": "not a link"}, "paymentLink"),
        ({"abandonmentId": ""}, "abandonmentId"),
        ({"value": 0}, "value"),
        ({"value": "0.00"}, "value"),
        ({"value": -10}, "value"),
        ({"value": "-0.01"}, "value"),
        ({"value": "19.999"}, "value"),
        ({"value": "abc"}, "value"),
        ({"value": "19,90"}, "value"),
        ({"value": "R$ 19.90"}, "value"),
        ({"value": "1_000"}, "value"),  # Python's Decimal() reads these; a checkout never means them
        ({"value": "1e3"}, "value"),
        ({"value": "١٩"}, "value"),
        ({"value": "１９.９０"}, "value"),
        ({"value": ""}, "value"),
        ({"value": "NaN"}, "value"),
        ({"value": "Infinity"}, "value"),
        ({"value": True}, "value"),
        ({"value": [19.9]}, "value"),
        ({"value": {"amount": 19.9}}, "value"),
        ({"value": "99999999999999"}, "value"),
    ],
)
@pytest.mark.django_db
def test_an_invalid_field_is_a_validation_error_naming_it(post, outbox, overrides, field):
    response = post(cart(**overrides))

    details = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in details
    assert_nothing_stored(outbox)


def test_an_empty_body_names_every_required_field(post, db, outbox):
    details = assert_error(post({}), 400, "VALIDATION_ERROR")

    assert set(details) == {"userId", "name", "phone", "productId", "paymentLink", "abandonmentId", "value"}
    assert_nothing_stored(outbox)


@pytest.mark.parametrize(
    "raw_value",
    ["19.999", "-1", "0", "true", "null"],
)
@pytest.mark.django_db
def test_a_bad_json_number_for_value_is_a_validation_error(post, outbox, raw_value):
    details = assert_error(post(with_raw_value(raw_value)), 400, "VALIDATION_ERROR")

    assert "value" in details
    assert_nothing_stored(outbox)


@pytest.mark.parametrize("raw_value", ["1e400", "-1e400", "9" * 400])
@pytest.mark.django_db
def test_a_number_beyond_any_float_is_refused_as_the_body_is_read(post, outbox, raw_value):
    details = assert_error(post(with_raw_value(raw_value)), 400, "VALIDATION_ERROR")

    assert "out of range" in details["body"][0]
    assert_nothing_stored(outbox)


@pytest.mark.parametrize("raw_value", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.django_db
def test_nan_and_infinity_are_not_json_at_all(post, outbox, raw_value):
    details = assert_error(post(with_raw_value(raw_value)), 400, "VALIDATION_ERROR")

    assert details == {"body": [f"{raw_value} is not JSON"]}
    assert_nothing_stored(outbox)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"abandonmentId": "ab-1001",',
        b'[{"abandonmentId": "ab-1001"}]',
        b"[]",
        b'"ab-1001"',
        b"42",
        b"null",
        b'{"name": "Jo\xe3o", "abandonmentId": "ab-1001"}',  # Latin-1, not UTF-8
        b"\xff\xfe\xfd",
        b"[" * 100_000,
    ],
    ids=[
        "empty",
        "text",
        "truncated",
        "array-of-carts",
        "empty-array",
        "string",
        "number",
        "null",
        "latin-1",
        "binary",
        "deep-nesting",
    ],
)
@pytest.mark.django_db
def test_a_body_that_is_not_a_json_object_is_a_validation_error_about_the_body(post, outbox, body):
    details = assert_error(post(body), 400, "VALIDATION_ERROR")

    assert "body" in details
    assert_nothing_stored(outbox)


@pytest.mark.django_db
def test_a_body_over_one_mebibyte_is_refused_as_too_large(post, outbox):
    body = json.dumps(cart()).encode()
    body += b" " * (MiB + 1 - len(body))

    assert_error(post(body), 413, "PAYLOAD_TOO_LARGE")
    assert_nothing_stored(outbox)


@pytest.mark.django_db
def test_a_body_of_exactly_one_mebibyte_is_accepted(post, product):
    body = json.dumps(cart()).encode()
    body += b" " * (MiB - len(body))

    response = post(body)

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "received"


# --- Money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_value", "expected"),
    [
        ("19.9", Decimal("19.90")),
        ('"19.9"', Decimal("19.90")),
        ("1234567.89", Decimal("1234567.89")),  # as a float this would be 1234567.8899999999
        ('"1234567.89"', Decimal("1234567.89")),
        ("0.01", Decimal("0.01")),
        ("297", Decimal("297.00")),
        ('"297"', Decimal("297.00")),
        ("0.1", Decimal("0.10")),
    ],
)
@pytest.mark.django_db
def test_value_as_a_json_number_or_a_decimal_string_is_stored_as_the_exact_decimal(
    post, product, raw_value, expected
):
    response = post(with_raw_value(raw_value))

    assert response.status_code == 200, response.content
    value = Abandonment.objects.get().value
    assert isinstance(value, Decimal)
    assert value == expected
    assert str(value) == str(expected)


# --- Opening the recovery ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_abandonment_opens_a_recovery_and_sends_the_configured_template_once(
    post, product, outbox, settings
):
    settings.WHATSAPP_TEMPLATE_NAME = "carrinho_abandonado_v2"
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "pt_BR"

    response = post(cart())

    conversation = Conversation.objects.get()
    assert response.status_code == 200
    assert response.json() == {
        "status": "received",
        "abandonmentId": "ab-1001",
        "conversationId": conversation.pk,
    }
    assert len(outbox) == 1
    wamid, sent = outbox[0]
    assert sent.to == "+5548999327881"
    assert sent.template_name == "carrinho_abandonado_v2"
    assert sent.template_language == "pt_BR"
    assert sent.template_parameters == ["Maria", "Curso de Python"]

    abandonment = Abandonment.objects.get()
    assert abandonment.external_id == "ab-1001"
    assert abandonment.customer.phone == "+5548999327881"
    assert abandonment.customer.name == "Maria Silva"
    assert abandonment.product == product
    assert abandonment.value == Decimal("297.00")
    assert abandonment.payment_link == "https://pay.example.com/cart/123"
    assert conversation.abandonment == abandonment
    assert conversation.status == Conversation.Status.AWAITING_RESPONSE
    template = conversation.messages.get()
    assert (template.direction, template.kind, template.status) == ("out", "template", "sent")
    assert template.whatsapp_message_id == wamid
    event = WebhookEvent.objects.get()
    assert (event.type, event.external_id, event.payload) == ("abandonment", "ab-1001", cart())


@pytest.mark.django_db
def test_the_first_template_goes_to_graph_as_exact_json(post, product, graph, settings):
    settings.WHATSAPP_TEMPLATE_NAME = "recovery_invitation"
    settings.WHATSAPP_TEMPLATE_LANGUAGE = "pt_BR"
    graph.post(GRAPH_URL, json=graph_ok("wamid.first-contact"))

    response = post(cart())

    assert response.status_code == 200
    assert len(graph.calls) == 1
    request = graph.calls[0].request
    assert request.headers["Authorization"] == "Bearer test-token"
    assert json.loads(request.body) == template_sent("recovery_invitation")
    assert Message.objects.get().whatsapp_message_id == "wamid.first-contact"


@pytest.mark.django_db
def test_a_phone_in_whatsapp_id_form_is_stored_with_the_ninth_digit(post, product, outbox):
    response = post(cart(phone="554899327881"))

    assert response.status_code == 200, response.content
    assert Customer.objects.get().phone == "+5548999327881"
    assert outbox[0][1].to == "+5548999327881"


# --- Repeats -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_abandonment_again_is_already_processed_and_sends_nothing(post, product, outbox):
    first = post(cart())
    again = [post(cart()), post(cart(value="1.00", name="Outra Pessoa"))]

    conversation_id = first.json()["conversationId"]
    assert first.json()["status"] == "received"
    for response in again:
        assert response.status_code == 200
        assert response.json() == {
            "status": "already_processed",
            "abandonmentId": "ab-1001",
            "conversationId": conversation_id,
        }
    assert len(outbox) == 1
    assert Abandonment.objects.get().value == Decimal("297.00")
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 1
    assert WebhookEvent.objects.count() == 1


@pytest.fixture(params=["new", "known"])
def on_sale_to(request, transactional_db):
    """The product on sale, to a customer Sara meets now or already knows."""
    ProductFactory(product_id="curso-python")
    if request.param == "known":
        CustomerFactory(phone="+5548999327881")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_abandonment_open_one_recovery_and_send_once(outbox, on_sale_to):
    responses = post_from_threads(URL, SECRET, [cart()] * 8)

    assert [r.status_code for r in responses] == [200] * 8
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["already_processed"] * 7 + ["received"]
    assert Customer.objects.count() == 1
    assert Abandonment.objects.count() == 1
    assert Conversation.objects.count() == 1
    assert Message.objects.count() == 1
    assert len(outbox) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_carts_of_one_customer_leave_one_open_conversation(outbox, on_sale_to):
    responses = post_from_threads(URL, SECRET, [cart(abandonmentId=f"ab-{n}") for n in range(6)])

    assert [r.status_code for r in responses] == [200] * 6
    assert {r.json()["status"] for r in responses} == {"received"}
    assert Abandonment.objects.count() == 6
    assert Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES).count() == 1
    assert Conversation.objects.filter(close_reason="superseded").count() == 5


# --- Who gets a recovery -----------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["+5548999327881", "554899327881", "(48) 9932-7881"])
@pytest.mark.django_db
def test_an_opted_out_customer_is_skipped_and_never_contacted(post, product, outbox, phone):
    CustomerFactory(phone="+5548999327881", name="Maria", opted_out=True, opted_out_reason="keyword")

    response = post(cart(phone=phone))

    assert response.status_code == 200
    assert response.json() == {"status": "skipped", "reason": "opted_out", "abandonmentId": "ab-1001"}
    assert Abandonment.objects.get().status == Abandonment.Status.SKIPPED
    assert Customer.objects.get().name == "Maria", "an opted-out record is left as it is"
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0
    assert outbox == []


@pytest.mark.parametrize("product_state", ["unknown", "inactive"])
@pytest.mark.django_db
def test_an_unknown_or_inactive_product_still_opens_the_recovery_without_a_discount(
    post, outbox, product_state
):
    if product_state == "inactive":
        ProductFactory(product_id="curso-python", active=False, discount_percent=Decimal("20"))

    response = post(cart(paymentLink="https://pay.example.com/cart/999"))

    assert response.status_code == 200
    assert response.json()["status"] == "received"
    abandonment = Abandonment.objects.get()
    assert abandonment.product is None
    assert abandonment.external_product_id == "curso-python"
    assert abandonment.payment_link == "https://pay.example.com/cart/999"
    assert abandonment.discounted_value() is None
    assert [sent.template_parameters for _, sent in outbox] == [["Maria", "seu carrinho"]]


@pytest.mark.django_db
def test_a_new_cart_supersedes_the_customers_open_conversation(post, product, outbox):
    older = ConversationFactory(
        abandonment__customer=CustomerFactory(phone="+5548999327881"),
        status=Conversation.Status.ACTIVE,
    )

    # The same person, written as WhatsApp writes the number.
    response = post(cart(abandonmentId="ab-2002", phone="554899327881"))

    older.refresh_from_db()
    newer = Conversation.objects.get(pk=response.json()["conversationId"])
    assert older.status == Conversation.Status.CLOSED
    assert older.close_reason == "superseded"
    assert older.closed_at is not None
    assert newer.status == Conversation.Status.AWAITING_RESPONSE
    assert newer.customer_id == older.customer_id
    assert Conversation.objects.filter(status__in=Conversation.OPEN_STATUSES).get() == newer
    assert len(outbox) == 1


@pytest.mark.parametrize(("sent_name", "kept_name"), [("Maria Silva", "Maria Silva"), ("", "Ana")])
@pytest.mark.django_db
def test_a_returning_customer_keeps_one_record_named_as_the_latest_cart_says(
    post, product, outbox, sent_name, kept_name
):
    known = CustomerFactory(phone="+5548999327881", name="Ana")

    response = post(cart(name=sent_name))

    assert response.json()["status"] == "received"
    assert Customer.objects.get() == known
    assert Customer.objects.get().name == kept_name
    assert Abandonment.objects.get().customer == known
    assert [sent.template_parameters for _, sent in outbox] == [[kept_name.split()[0], "Curso de Python"]]


@pytest.mark.django_db
def test_the_new_conversation_counts_its_first_template(post, product, outbox):
    moment = datetime(2025, 11, 22, 14, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    with time_machine.travel(moment, tick=False):
        post(cart())

    conversation = Conversation.objects.get()
    template = conversation.messages.get()
    assert conversation.message_count == 1
    assert conversation.last_message_at == template.created_at == moment


def test_two_carts_in_quiet_hours_send_one_invitation_in_the_morning(post, product, outbox, settings):
    settings.SARA_QUIET_HOURS = "21:00-08:00"
    night = datetime(2025, 11, 22, 23, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))
    with time_machine.travel(night, tick=False):
        post(cart(abandonmentId="ab-1"))
        post(cart(abandonmentId="ab-2"))
        assert outbox == []

    with time_machine.travel(night + timedelta(hours=9, minutes=5), tick=False):
        sweep_stuck.delay()

    assert len(outbox) == 1
