"""The holdout group (SPEC §13): a keyed, repeatable draw; never contacted by any path; payments kept."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from compliance.tasks import sweep_windows
from messaging.models import Message
from messaging.tasks import send_message, sweep_stuck
from recovery.holdout import holdout_draw, holdout_number
from recovery.models import Abandonment, Conversation
from tests.conftest import first_message, meta_payload
from tests.factories import ConversationFactory, CustomerFactory, OutboundMessageFactory, ProductFactory

pytestmark = pytest.mark.django_db

PHONE = "+5548999327881"
T0 = datetime.fromisoformat("2026-11-02 12:00:00+00:00")


def first_id(*, held_out: bool, percent: int = 10) -> str:
    """The first abandonment id the draw puts in (or out of) the holdout group at this share."""
    return next(f"ab-{n}" for n in itertools.count() if (holdout_number(f"ab-{n}") < percent) is held_out)


def cart(abandonment_id: str, **overrides: str) -> dict[str, str]:
    return {
        "userId": "user-42",
        "name": "Maria Silva",
        "phone": PHONE,
        "productId": "curso-python",
        "paymentLink": "https://pay.example.com/cart/123",
        "abandonmentId": abandonment_id,
        "value": "297.00",
        **overrides,
    }


@pytest.fixture
def holdout(settings):
    settings.SARA_HOLDOUT_PERCENT = Decimal("10")
    ProductFactory(product_id="curso-python")
    return settings


@pytest.fixture
def open_cart(post_signed, django_capture_on_commit_callbacks):
    def post(abandonment_id: str, **overrides: str):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_signed("/webhook/abandonment", cart(abandonment_id, **overrides))
        assert response.status_code == 200, response.content
        return response

    return post


# --- The draw ---------------------------------------------------------------------------------


def test_the_draw_is_repeatable_and_close_to_the_share_on_10000_ids(settings):
    ids = [f"cart-{n}" for n in range(10_000)]

    first = [holdout_draw(external_id=i, percent=Decimal("10")).held_out for i in ids]
    again = [holdout_draw(external_id=i, percent=Decimal("10")).held_out for i in ids]

    assert first == again
    # Binomial(10,000, 0.1) has a standard deviation of 30 carts: ±100 is over three of them.
    assert 900 <= sum(first) <= 1100
    numbers = [holdout_number(i) for i in ids]
    assert all(0 <= x < 100 for x in numbers)
    # Spread over the whole range, not bunched: each tenth holds about a tenth of the ids.
    assert all(900 <= sum(1 for x in numbers if k * 10 <= x < (k + 1) * 10) <= 1100 for k in range(10))


def test_the_draw_is_keyed_so_another_secret_draws_other_carts(settings):
    ids = [f"cart-{n}" for n in range(2_000)]
    ours = {i for i in ids if holdout_number(i) < 10}
    settings.SECRET_KEY = "another-deployment-secret"
    theirs = {i for i in ids if holdout_number(i) < 10}

    assert ours != theirs
    assert len(ours & theirs) < len(ours) / 2


def test_no_share_holds_out_nothing_and_a_full_share_everything():
    assert not any(holdout_draw(external_id=f"c{n}", percent=Decimal(0)).held_out for n in range(1000))
    assert all(holdout_draw(external_id=f"c{n}", percent=Decimal(100)).held_out for n in range(1000))


# --- At cart open -----------------------------------------------------------------------------


def test_a_held_out_cart_is_recorded_and_nothing_is_sent(holdout, open_cart, outbox):
    held = first_id(held_out=True)

    response = open_cart(held)

    assert response.json() == {"status": "held_out", "abandonmentId": held}
    abandonment = Abandonment.objects.get(external_id=held)
    assert (abandonment.status, abandonment.held_out, abandonment.holdout_percent) == (
        "held_out",
        True,
        Decimal("10.00"),
    )
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert outbox == []

    again = open_cart(held)
    assert again.json()["status"] == "already_processed"
    assert outbox == []


def test_a_contacted_cart_remembers_the_share_it_was_drawn_under(holdout, open_cart, outbox):
    contacted = first_id(held_out=False)

    response = open_cart(contacted)

    assert response.json()["status"] == "received"
    abandonment = Abandonment.objects.get(external_id=contacted)
    assert (abandonment.held_out, abandonment.holdout_percent) == (False, Decimal("10.00"))
    assert len(outbox) == 1

    holdout.SARA_HOLDOUT_PERCENT = Decimal("50")
    abandonment.refresh_from_db()
    assert abandonment.holdout_percent == Decimal("10.00")


def test_an_opted_out_customer_is_skipped_before_the_draw(holdout, open_cart, outbox):
    CustomerFactory(phone=PHONE, opted_out=True, opted_out_reason="keyword")
    held = first_id(held_out=True)

    response = open_cart(held)

    assert response.json() == {"status": "skipped", "reason": "opted_out", "abandonmentId": held}
    abandonment = Abandonment.objects.get(external_id=held)
    assert (abandonment.status, abandonment.held_out, abandonment.holdout_percent) == ("skipped", False, None)


def test_a_held_out_cart_supersedes_the_customers_older_recovery_so_nothing_chases_them(
    holdout, open_cart, outbox, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    open_cart(first_id(held_out=False))
    assert len(outbox) == 1

    open_cart(first_id(held_out=True))

    older = Conversation.objects.get()
    assert (older.status, older.close_reason) == ("closed", "superseded")
    time_machine.move_to(T0 + timedelta(hours=25), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_windows.delay().get()["followups"] == 0
    assert len(outbox) == 1


# --- Never contacted, by any path -------------------------------------------------------------


def test_a_held_out_customer_who_writes_gets_no_reply(holdout, open_cart, post_signed, outbox):
    open_cart(first_id(held_out=True))
    payload = meta_payload("text")
    first_message(payload)["timestamp"] = str(int(timezone.now().timestamp()))
    first_message(payload)["text"]["body"] = "Oi, qual o valor do frete?"

    assert post_signed("/webhook/messages", payload).status_code == 200

    assert outbox == []
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_the_follow_up_and_stuck_work_sweeps_send_nothing_to_a_held_out_cart(
    holdout, open_cart, outbox, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to(T0, tick=False)
    open_cart(first_id(held_out=True))

    time_machine.move_to(T0 + timedelta(hours=30), tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_windows.delay().get() == {"followups": 0, "expired": 0}
        sweep_stuck.delay().get()

    assert outbox == []


def held_out_message(**fields) -> Message:
    """A message that somehow got queued for a held-out cart (a bug, a staff reply, a migration)."""
    abandonment_conversation = ConversationFactory(
        abandonment__customer=CustomerFactory(phone=PHONE, name="Maria Silva"),
        abandonment__status=Abandonment.Status.HELD_OUT,
        abandonment__held_out=True,
        abandonment__holdout_percent=Decimal("10"),
        last_user_message_at=timezone.now(),
    )
    return OutboundMessageFactory(conversation=abandonment_conversation, **fields)


@pytest.mark.parametrize(
    "purpose", [Message.Purpose.FIRST_CONTACT, Message.Purpose.REPLY, Message.Purpose.FAREWELL]
)
def test_the_send_gate_refuses_any_message_of_a_held_out_cart(graph, outbox, purpose):
    message = held_out_message(status=Message.Status.PENDING, purpose=purpose)

    send_message.delay(message.pk)

    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "held_out")
    assert len(graph.calls) == 0


# --- Payments without Sara --------------------------------------------------------------------


def pay(post_signed, abandonment_id: str, payment_id: str = "pay-1", amount: str = "297.00"):
    body = {"abandonmentId": abandonment_id, "paymentId": payment_id, "status": "paid", "amount": amount}
    return post_signed("/webhook/payment", body)


def test_a_held_out_carts_payment_is_recorded_as_a_conversion_without_sara(
    holdout, open_cart, post_signed, outbox
):
    held = first_id(held_out=True)
    open_cart(held)

    response = pay(post_signed, held)

    assert response.json() == {"status": "converted", "abandonmentId": held}
    abandonment = Abandonment.objects.get(external_id=held)
    assert abandonment.status == "held_out"
    assert (abandonment.payment_id, abandonment.paid_amount) == ("pay-1", Decimal("297.00"))
    assert abandonment.converted_at is not None
    assert outbox == []  # no thank-you either
    assert pay(post_signed, held).json()["status"] == "already_processed"
    assert pay(post_signed, held, payment_id="pay-2").json()["status"] == "already_converted"


def test_a_payment_that_came_before_a_held_out_cart_converts_it_on_arrival(
    holdout, open_cart, post_signed, outbox
):
    held = first_id(held_out=True)
    assert pay(post_signed, held).status_code == 404

    open_cart(held)

    abandonment = Abandonment.objects.get(external_id=held)
    assert (abandonment.status, abandonment.payment_id) == ("held_out", "pay-1")
    assert outbox == []


def test_a_platforms_cart_that_is_held_out_gets_no_template(
    settings, client, outbox, django_capture_on_commit_callbacks
):
    from tests.recovery.platforms import SECRETS, payload, post

    for name, value in SECRETS.items():
        setattr(settings, name, value)
    # A full share: whatever the platform's id, the cart falls in the holdout group.
    settings.SARA_HOLDOUT_PERCENT = Decimal("100")

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, "yampi", payload("yampi", "cart_reminder"))

    assert response.status_code == 200, response.content
    abandonment = Abandonment.objects.get(external_id="yampi:38114521")
    assert (abandonment.status, abandonment.held_out) == ("held_out", True)
    assert not Conversation.objects.exists()
    assert outbox == []
